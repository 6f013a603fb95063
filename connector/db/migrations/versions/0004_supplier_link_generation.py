"""Supplier links can be revoked and reissued: a generation counter on POs and forwards.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("purchase_orders", "dropship_forwards")


def upgrade() -> None:
    # Links already sent carry no generation and read as generation 1, so they keep working.
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("link_generation", sa.Integer(), server_default="1", nullable=False))
            batch_op.add_column(sa.Column("link_issued_at", sa.DateTime(timezone=True), nullable=True))
            batch_op.add_column(sa.Column("link_revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("link_revoked_at")
            batch_op.drop_column("link_issued_at")
            batch_op.drop_column("link_generation")
