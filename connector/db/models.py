"""The normalized model: SQLAlchemy 2.0 typed tables.

Every row belongs to one shop (``shop_id NOT NULL``); the unit of work scopes every ORM
query by it in one place (see ``connector.db.uow``). Money is stored in integer minor units
(cents) so SQLite and PostgreSQL compute the same totals. Quantities carry CHECK
constraints; the line invariant ``ordered = allocated + backordered + cancelled`` is a CHECK
too, so a bug in the engine fails loudly instead of corrupting a promise.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship

from connector.db.types import EncryptedJSON, EncryptedText, UTCDateTime

# Named constraints so Alembic migrations and autogenerate agree on both databases.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Open POs can still deliver units; pegs may point at them.
OPEN_PO_STATUSES = ("draft", "ready", "sent", "confirmed", "partially_received")
DRAFT_PO_STATUSES = ("draft", "ready")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), int: Integer()}


class ShopOwned:
    """Mixin for every tenant row; the unit of work filters on this column automatically."""

    @declared_attr
    def shop_id(cls) -> Mapped[int]:  # noqa: N805 - declared_attr takes the class
        return mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)


class Shop(Base):
    __tablename__ = "shops"
    __table_args__ = (UniqueConstraint("platform", "domain"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(20))  # shopify | woocommerce | manual
    domain: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255), default="")
    status: Mapped[str] = mapped_column(String(20), default="installed")  # installed|uninstalled|needs_reauth
    credentials: Mapped[dict[str, Any] | None] = mapped_column(EncryptedJSON(), nullable=True)
    webhook_secret: Mapped[str | None] = mapped_column(EncryptedText(), nullable=True)
    scopes: Mapped[str] = mapped_column(String(500), default="")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    po_sequence: Mapped[int] = mapped_column(default=0)
    forward_sequence: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    uninstalled_at: Mapped[datetime | None]

    @property
    def active(self) -> bool:
        return self.status == "installed"


class Location(ShopOwned, Base):
    __tablename__ = "locations"
    __table_args__ = (UniqueConstraint("shop_id", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255), default="")
    fulfilling: Mapped[bool] = mapped_column(Boolean, default=True)


class Supplier(ShopOwned, Base):
    __tablename__ = "suppliers"
    __table_args__ = (
        UniqueConstraint("shop_id", "name"),
        CheckConstraint("lead_time_days >= 0", name="lead_time"),
        CheckConstraint("min_order_value_cents >= 0", name="min_value"),
        CheckConstraint("dropship_min_units >= 0 AND dropship_min_value_cents >= 0", name="quota"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    address: Mapped[str | None] = mapped_column(Text)
    delivery_method: Mapped[str] = mapped_column(String(20), default="email")  # email | webhook
    webhook_url: Mapped[str | None] = mapped_column(String(500))
    webhook_secret: Mapped[str | None] = mapped_column(EncryptedText(), nullable=True)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    lead_time_days: Mapped[int] = mapped_column(default=14)
    min_order_value_cents: Mapped[int] = mapped_column(default=0)
    max_wait_days: Mapped[int | None]
    auto_send: Mapped[bool] = mapped_column(Boolean, default=False)
    dropship: Mapped[bool] = mapped_column(Boolean, default=False)
    dropship_min_units: Mapped[int] = mapped_column(default=0)
    dropship_min_value_cents: Mapped[int] = mapped_column(default=0)
    dropship_max_wait_days: Mapped[int | None]


class SupplierItem(ShopOwned, Base):
    __tablename__ = "supplier_items"
    __table_args__ = (
        UniqueConstraint("shop_id", "supplier_id", "sku"),
        CheckConstraint("pack_size >= 1", name="pack_size"),
        CheckConstraint("moq >= 0", name="moq"),
        CheckConstraint("unit_cost_cents >= 0", name="unit_cost"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id", ondelete="CASCADE"), index=True)
    sku: Mapped[str] = mapped_column(String(255))
    supplier_sku: Mapped[str | None] = mapped_column(String(255))
    unit_cost_cents: Mapped[int] = mapped_column(default=0)
    pack_size: Mapped[int] = mapped_column(default=1)
    moq: Mapped[int] = mapped_column(default=0)


class Variant(ShopOwned, Base):
    """A sellable SKU. ``free_stock`` is the engine's own count of units on hand that no order
    line holds; the platform's per-location numbers live in :class:`StockLevel`."""

    __tablename__ = "variants"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        Index("ix_variants_shop_sku", "shop_id", "sku"),
        CheckConstraint("free_stock >= 0", name="free_stock"),
        CheckConstraint("safety_stock >= 0", name="safety_stock"),
        CheckConstraint("unit_value_cents >= 0", name="unit_value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(64))
    product_external_id: Mapped[str | None] = mapped_column(String(64))
    inventory_item_external_id: Mapped[str | None] = mapped_column(String(64), index=True)
    sku: Mapped[str] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500), default="")
    supplier_id: Mapped[int | None] = mapped_column(ForeignKey("suppliers.id", ondelete="SET NULL"), index=True)
    backorders_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    tracks_inventory: Mapped[bool] = mapped_column(Boolean, default=True)
    dropship: Mapped[bool] = mapped_column(Boolean, default=False)
    release_date: Mapped[date | None] = mapped_column(Date)
    unit_value_cents: Mapped[int] = mapped_column(default=0)
    safety_stock: Mapped[int] = mapped_column(default=0)
    popular: Mapped[bool] = mapped_column(Boolean, default=False)
    free_stock: Mapped[int] = mapped_column(default=0)
    platform_updated_at: Mapped[datetime | None]


class StockLevel(ShopOwned, Base):
    """What the store reports per location. ``available`` may be negative on Shopify
    (an oversold CONTINUE variant), so only on-hand and incoming are checked >= 0."""

    __tablename__ = "stock_levels"
    __table_args__ = (
        UniqueConstraint("variant_id", "location_id"),
        CheckConstraint("on_hand >= 0", name="on_hand"),
        CheckConstraint("incoming >= 0", name="incoming"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="CASCADE"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id", ondelete="CASCADE"), index=True)
    on_hand: Mapped[int] = mapped_column(default=0)
    available: Mapped[int] = mapped_column(default=0)
    incoming: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime | None]


class SalesOrder(ShopOwned, Base):
    __tablename__ = "sales_orders"
    __table_args__ = (UniqueConstraint("shop_id", "external_id"), Index("ix_sales_orders_shop_placed", "shop_id", "placed_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(64))
    graphql_id: Mapped[str | None] = mapped_column(String(128))
    number: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), default="open")  # open|pending|closed|fulfilled
    customer_email: Mapped[str | None] = mapped_column(String(255))
    customer_name: Mapped[str | None] = mapped_column(String(255))
    customer_external_id: Mapped[str | None] = mapped_column(String(64), index=True)
    ship_to: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    currency: Mapped[str | None] = mapped_column(String(3))
    priority: Mapped[int] = mapped_column(default=0)
    placed_at: Mapped[datetime]
    platform_updated_at: Mapped[datetime]
    created_at: Mapped[datetime]

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.id", cascade="all, delete-orphan"
    )


class OrderLine(ShopOwned, Base):
    """One order line. ``kind`` says what its uncovered units wait for (backorder, preorder,
    dropship, oversold when the variant allows no backorders) and never changes once set;
    ``pegged`` is the sum of its pegs, kept here so a no-op consolidation is one indexed scan.
    On PostgreSQL the table keeps half of each page free (fillfactor 50, migration 0006) so
    the several updates of a line's life stay on its page and write no index."""

    __tablename__ = "order_lines"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        CheckConstraint(
            "ordered >= 0 AND allocated >= 0 AND backordered >= 0 AND cancelled >= 0 AND pegged >= 0 "
            "AND fulfilled >= 0",
            name="non_negative",
        ),
        CheckConstraint("ordered = allocated + backordered + cancelled", name="balanced"),
        CheckConstraint("pegged <= backordered", name="pegged_le_backordered"),
        CheckConstraint("fulfilled <= allocated", name="fulfilled_le_allocated"),
        Index("ix_order_lines_waiting", "shop_id", "variant_id", "backordered"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("sales_orders.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(64))
    variant_id: Mapped[int | None] = mapped_column(ForeignKey("variants.id", ondelete="SET NULL"), index=True)
    sku: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str] = mapped_column(String(500), default="")
    unit_price_cents: Mapped[int] = mapped_column(default=0)
    kind: Mapped[str] = mapped_column(String(20), default="stock")  # stock|backorder|preorder|dropship|oversold|untracked
    ordered: Mapped[int] = mapped_column(default=0)
    allocated: Mapped[int] = mapped_column(default=0)
    backordered: Mapped[int] = mapped_column(default=0)
    cancelled: Mapped[int] = mapped_column(default=0)
    fulfilled: Mapped[int] = mapped_column(default=0)
    pegged: Mapped[int] = mapped_column(default=0)
    # Copied from the order so FIFO queries need no join.
    priority: Mapped[int] = mapped_column(default=0)
    placed_at: Mapped[datetime]
    last_covered_at: Mapped[datetime | None]
    waiting_since: Mapped[datetime | None]
    promised_eta: Mapped[date | None] = mapped_column(Date)
    notified_eta: Mapped[date | None] = mapped_column(Date)
    current_eta: Mapped[date | None] = mapped_column(Date)
    dropship_forward_id: Mapped[int | None] = mapped_column(
        ForeignKey("dropship_forwards.id", ondelete="SET NULL"), index=True
    )

    order: Mapped[SalesOrder] = relationship(back_populates="lines")


class PurchaseOrder(ShopOwned, Base):
    __tablename__ = "purchase_orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "number"),
        # At most one open draft per supplier, even if two consolidations race.
        Index(
            "uq_purchase_orders_one_draft",
            "shop_id",
            "supplier_id",
            unique=True,
            sqlite_where=text("status IN ('draft', 'ready')"),
            postgresql_where=text("status IN ('draft', 'ready')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id", ondelete="RESTRICT"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(24), default="draft")
    created_at: Mapped[datetime]
    ready_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    cancelled_at: Mapped[datetime | None]
    expected_date: Mapped[date] = mapped_column(Date)
    expected_date_source: Mapped[str] = mapped_column(String(20), default="lead_time")  # lead_time|supplier|merchant
    notes: Mapped[str | None] = mapped_column(Text)
    # The supplier link: a token of another generation, or any token while revoked, is refused.
    link_generation: Mapped[int] = mapped_column(default=1, server_default="1")
    link_issued_at: Mapped[datetime | None]  # a new link's expiry counts from here, not from sent_at
    link_revoked_at: Mapped[datetime | None]

    lines: Mapped[list[PurchaseOrderLine]] = relationship(
        back_populates="purchase_order", order_by="PurchaseOrderLine.id", cascade="all, delete-orphan"
    )


class PurchaseOrderLine(ShopOwned, Base):
    __tablename__ = "purchase_order_lines"
    __table_args__ = (
        UniqueConstraint("purchase_order_id", "variant_id"),
        CheckConstraint(
            "ordered >= 0 AND received >= 0 AND received_to_lines >= 0 AND unit_cost_cents >= 0",
            name="non_negative",
        ),
        CheckConstraint("received_to_lines <= received", name="allocated_le_received"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_orders.id", ondelete="CASCADE"), index=True)
    variant_id: Mapped[int] = mapped_column(ForeignKey("variants.id", ondelete="RESTRICT"), index=True)
    sku: Mapped[str] = mapped_column(String(255))
    supplier_sku: Mapped[str | None] = mapped_column(String(255))
    unit_cost_cents: Mapped[int] = mapped_column(default=0)
    ordered: Mapped[int] = mapped_column(default=0)
    received: Mapped[int] = mapped_column(default=0)
    received_to_lines: Mapped[int] = mapped_column(default=0)

    purchase_order: Mapped[PurchaseOrder] = relationship(back_populates="lines")


class Peg(ShopOwned, Base):
    """``units`` of an order line wait on a PO line."""

    __tablename__ = "pegs"
    __table_args__ = (
        UniqueConstraint("order_line_id", "po_line_id"),
        CheckConstraint("units > 0", name="units_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign key to shops: a peg belongs to its shop through its order line, whose cascade
    # removes it with the shop, and a third per-row trigger cost a fifth of pegging a large
    # backlog (migration 0006). The column still scopes every query like any tenant row's.
    shop_id: Mapped[int] = mapped_column(index=True)
    # Looked up by order line through the unique (order_line_id, po_line_id) index.
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id", ondelete="CASCADE"))
    po_line_id: Mapped[int] = mapped_column(ForeignKey("purchase_order_lines.id", ondelete="CASCADE"), index=True)
    units: Mapped[int]


class ExpectedDateChange(ShopOwned, Base):
    __tablename__ = "expected_date_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    purchase_order_id: Mapped[int] = mapped_column(ForeignKey("purchase_orders.id", ondelete="CASCADE"), index=True)
    old_date: Mapped[date | None] = mapped_column(Date)
    new_date: Mapped[date] = mapped_column(Date)
    source: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    changed_at: Mapped[datetime]


class DropshipForward(ShopOwned, Base):
    __tablename__ = "dropship_forwards"
    __table_args__ = (UniqueConstraint("shop_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(ForeignKey("suppliers.id", ondelete="RESTRICT"), index=True)
    number: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|sent|shipped|failed
    reason: Mapped[str] = mapped_column(String(20), default="quota")  # quota|max_wait|manual
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    tracking: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    link_generation: Mapped[int] = mapped_column(default=1, server_default="1")  # as on PurchaseOrder
    link_issued_at: Mapped[datetime | None]
    link_revoked_at: Mapped[datetime | None]


class OutboxMessage(ShopOwned, Base):
    """An effect that must leave the system, written in the transaction that caused it."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        UniqueConstraint("shop_id", "idempotency_key"),
        Index("ix_outbox_due", "state", "next_attempt_at"),
        CheckConstraint("attempts >= 0", name="attempts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    target: Mapped[str] = mapped_column(String(20))  # customer | storefront | supplier | merchant
    subject: Mapped[str | None] = mapped_column(String(128))  # e.g. the order's external id
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(20), default="pending")  # pending|sent|dead|skipped
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


class WebhookEvent(ShopOwned, Base):
    __tablename__ = "webhook_events"
    __table_args__ = (
        UniqueConstraint("shop_id", "event_id"),
        Index("ix_webhook_events_pending", "processed_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No index of its own: the unique (shop_id, event_id) index serves lookups by shop, and every
    # delivery wrote one index page more (migration 0006).
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(20))
    topic: Mapped[str] = mapped_column(String(64))
    event_id: Mapped[str] = mapped_column(String(128))
    resource_id: Mapped[str | None] = mapped_column(String(64))
    resource_updated_at: Mapped[datetime | None]
    payload: Mapped[str | None] = mapped_column(Text)  # raw JSON; pruned after processing + retention
    received_at: Mapped[datetime]
    processed_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|processed|failed|ignored
    error: Mapped[str | None] = mapped_column(Text)


class SyncCursor(ShopOwned, Base):
    __tablename__ = "sync_cursors"
    __table_args__ = (UniqueConstraint("shop_id", "resource"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    resource: Mapped[str] = mapped_column(String(40))
    cursor: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime]


class JobRun(Base):
    """What a job did. ``shop_id`` is NULL for runs that span all shops (the fan-out itself)."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_job_started", "job", "started_at"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    shop_id: Mapped[int | None] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    job: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(20), default="running")  # running|ok|failed|skipped
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)


def line_table() -> Table:
    """The order_lines Table, for Core bulk statements on hot paths."""
    return cast(Table, OrderLine.__table__)


def peg_table() -> Table:
    return cast(Table, Peg.__table__)


def po_line_table() -> Table:
    return cast(Table, PurchaseOrderLine.__table__)


class MerchantUser(ShopOwned, Base):
    """A person who signs in to the merchant pages of one shop (e-mail unique per shop)."""

    __tablename__ = "merchant_users"
    __table_args__ = (UniqueConstraint("shop_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    last_login_at: Mapped[datetime | None]


class LoginFailure(Base):
    """One refused sign-in, kept a short while to rate-limit guessing per e-mail and address.

    Not shop-owned: a failed sign-in has no shop yet (like :class:`JobRun` for cross-shop runs).
    """

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_email_ip_at", "email", "ip", "failed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255))
    ip: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[datetime]


class ApiToken(ShopOwned, Base):
    """A bearer token for the shop's JSON API. Only a SHA-256 of the token is stored: tokens are
    32 random bytes, so a fast hash is enough and a leaked table reveals no usable token."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    token_prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64))
    # "read" or "read_write": a read token can list backorders and POs, never record a receipt.
    scope: Mapped[str] = mapped_column(String(20), default="read_write", server_default="read_write")
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class ApiIdempotencyKey(ShopOwned, Base):
    """An ``Idempotency-Key`` a client sent with a write, and the answer it got.

    The row is claimed (inserted, ``status`` NULL) before the write runs, so the unique key
    stops a concurrent duplicate from applying too; the answer is stored when the write
    succeeds. ``request_hash`` (SHA-256 of method, path and body) tells a retry from a reuse of
    the key for another request. Rows expire after 24 hours (retention deletes them).
    """

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (UniqueConstraint("shop_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None]
    response: Mapped[str | None] = mapped_column(Text)  # the JSON body answered
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]


class ApiRateWindow(ShopOwned, Base):
    """Requests one API token made in one minute (a fixed window), per kind (read or write).

    One UPSERT per request keeps the count in the database, so every web worker shares it.
    ``window_minute`` counts minutes since the epoch; ``token_hash`` the token's stored SHA-256.
    """

    __tablename__ = "api_rate_windows"
    __table_args__ = (UniqueConstraint("token_hash", "kind", "window_minute"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(10))  # read | write
    window_minute: Mapped[int]
    hits: Mapped[int] = mapped_column(default=0)
