"""The JSON API remembers Idempotency-Keys and counts requests per token and minute.

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_idempotency_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_api_idempotency_keys_shop_id_shops"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_idempotency_keys")),
        sa.UniqueConstraint("shop_id", "key", name=op.f("uq_api_idempotency_keys_shop_id_key")),
    )
    op.create_index(op.f("ix_api_idempotency_keys_shop_id"), "api_idempotency_keys", ["shop_id"], unique=False)
    op.create_table(
        "api_rate_windows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("window_minute", sa.Integer(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["shop_id"], ["shops.id"], name=op.f("fk_api_rate_windows_shop_id_shops"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_rate_windows")),
        sa.UniqueConstraint("token_hash", "kind", "window_minute", name=op.f("uq_api_rate_windows_token_hash_kind_window_minute")),
    )
    op.create_index(op.f("ix_api_rate_windows_shop_id"), "api_rate_windows", ["shop_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_rate_windows_shop_id"), table_name="api_rate_windows")
    op.drop_table("api_rate_windows")
    op.drop_index(op.f("ix_api_idempotency_keys_shop_id"), table_name="api_idempotency_keys")
    op.drop_table("api_idempotency_keys")
