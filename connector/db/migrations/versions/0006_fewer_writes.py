"""Fewer writes where volume is: pegging a large backlog, and storing each webhook delivery.

Consolidating 100,000 waiting lines writes 100,000 pegs and updates as many order lines
(bench/consolidation.py). On PostgreSQL that was two thirds of the time:

- ``order_lines`` gets ``fillfactor = 50``. An order line is updated several times in its life
  (allocated, pegged, ETA); with free room on its page the new version stays there and no index
  is touched (a HOT update). Full pages made every update write all seven indexes. Pages written
  from now on keep the room; an existing table gets it as rows move or after VACUUM FULL.
- ``pegs.order_line_id`` loses its own index: the unique (order_line_id, po_line_id) index
  serves the same lookups.
- ``pegs.shop_id`` loses its foreign key: a peg belongs to its shop through its order line, whose
  cascade removes it with the shop; the third per-row trigger cost a fifth of the insert.
- ``webhook_events.shop_id`` loses its own index: the unique (shop_id, event_id) index serves
  the same lookups, and every stored delivery wrote one index page more.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE order_lines SET (fillfactor = 50)")
    op.drop_index(op.f("ix_pegs_order_line_id"), table_name="pegs")
    op.drop_index(op.f("ix_webhook_events_shop_id"), table_name="webhook_events")
    with op.batch_alter_table("pegs") as batch_op:
        batch_op.drop_constraint(op.f("fk_pegs_shop_id_shops"), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("pegs") as batch_op:
        batch_op.create_foreign_key(op.f("fk_pegs_shop_id_shops"), "shops", ["shop_id"], ["id"], ondelete="CASCADE")
    op.create_index(op.f("ix_webhook_events_shop_id"), "webhook_events", ["shop_id"], unique=False)
    op.create_index(op.f("ix_pegs_order_line_id"), "pegs", ["order_line_id"], unique=False)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE order_lines RESET (fillfactor)")
