"""Shared helpers for the benchmarks: fresh databases and the one-JSON-line-per-figure format."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connector import crypto
from connector.config import DEMO_FERNET_KEY
from connector.db import migrate
from connector.db.engine import Database

PG_URL = os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
    "TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def emit(bench: str, figure: str, value: float, unit: str, baseline: float | None, target: str,
         ok: bool | None, **extra: Any) -> None:
    ratio = round(value / baseline, 3) if baseline else None
    print(json.dumps({"bench": bench, "figure": figure, "value": round(value, 4), "unit": unit,
                      "baseline": None if baseline is None else round(baseline, 4), "ratio": ratio,
                      "target": target, "ok": ok, **extra}), flush=True)


@contextmanager
def fresh_database(kind: str, workdir: Path) -> Iterator[Database]:
    """A migrated, empty database: a SQLite file in ``workdir`` or a new PostgreSQL database."""
    crypto.configure_cipher([DEMO_FERNET_KEY])
    if kind == "sqlite":
        db = Database(f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:8]}.sqlite3'}")
        migrate.upgrade(db)
        try:
            yield db
        finally:
            db.dispose()
        return
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    db = Database(make_url(PG_URL).set(database=name).render_as_string(hide_password=False))
    try:
        migrate.upgrade(db)
        yield db
    finally:
        db.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def postgres_available() -> bool:
    try:
        engine = create_engine(PG_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - any failure means: skip the PostgreSQL figures
        return False
