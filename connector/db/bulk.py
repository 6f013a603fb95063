"""Bulk UPDATE by primary key, fast on both databases.

SQLite runs an ``executemany`` of single-row UPDATEs at a few hundred thousand rows a second.
PostgreSQL pays a round trip per row that way (100,000 rows took minutes), so there the rows
are sent as ``UPDATE ... FROM (VALUES ...)`` in chunks: one statement per few thousand rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Integer, Table, bindparam, cast, column, update, values

CHUNK_ROWS = 4_000  # x (columns + 1) parameters stays under PostgreSQL's 65,535 limit


def update_by_id(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    set_columns: Sequence[str],
    increment: Sequence[str] = (),
) -> None:
    """Apply ``rows`` (each ``{"id": ..., col: value}``) to ``table``.

    Columns named in ``increment`` are added to the current value instead of replacing it.
    """
    if not rows:
        return
    if conn.dialect.name != "postgresql":
        stmt = update(table).where(table.c.id == bindparam("b_id", type_=Integer)).values(
            {
                name: (table.c[name] + bindparam(f"b_{name}", type_=table.c[name].type))
                if name in increment
                else bindparam(f"b_{name}", type_=table.c[name].type)
                for name in set_columns
            }
        )
        conn.execute(stmt, [{"b_id": r["id"], **{f"b_{n}": r[n] for n in set_columns}} for r in rows])
        return
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[start : start + CHUNK_ROWS]
        v = values(
            column("id", Integer),
            *(column(name, table.c[name].type) for name in set_columns),
            name="v",
        ).data([(r["id"], *(r[n] for n in set_columns)) for r in chunk])
        # VALUES columns arrive untyped (NULLs and dates read as text): cast them to the column type.
        typed = {name: cast(v.c[name], table.c[name].type) for name in set_columns}
        stmt = update(table).where(table.c.id == v.c.id).values(
            {name: (table.c[name] + typed[name]) if name in increment else typed[name] for name in set_columns}
        )
        conn.execute(stmt)


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert many rows: ``COPY`` on PostgreSQL (several times faster than multi-row INSERTs
    for 100,000 rows), a plain ``executemany`` elsewhere. Same transaction either way."""
    if not rows:
        return
    if conn.dialect.name != "postgresql" or len(rows) < 1_000:
        conn.execute(table.insert(), list(rows))
        return
    columns = list(rows[0])
    dbapi = conn.connection.dbapi_connection
    assert dbapi is not None
    with dbapi.cursor() as cursor:  # type: ignore[attr-defined]
        names = ", ".join(f'"{c}"' for c in columns)
        with cursor.copy(f'COPY "{table.name}" ({names}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([row[c] for c in columns])
