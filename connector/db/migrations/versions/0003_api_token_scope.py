"""API tokens get a scope: read, or read_write (may record receipts).

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Existing tokens keep what they could do: read and write.
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.add_column(sa.Column("scope", sa.String(length=20), server_default="read_write", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch_op:
        batch_op.drop_column("scope")
