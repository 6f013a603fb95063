"""Unit of work with tenant scoping in one place.

``with UnitOfWork(db, shop_id) as uow: ...; uow.commit()`` — rollback is the default. A unit
of work bound to a shop adds ``shop_id = :shop`` to every ORM SELECT, UPDATE and DELETE on a
shop-owned table (``with_loader_criteria``), and refuses to flush a row of another shop. So a
repository cannot return another shop's rows, whatever ids it is given.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, TypeVar

from sqlalchemy import Select, event, select
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from connector.db.engine import Database
from connector.db.models import Shop, ShopOwned
from connector.errors import NotFound

T = TypeVar("T")


class TenantViolation(RuntimeError):
    """A write tried to touch a row of another shop (a bug, never user input)."""


@event.listens_for(Session, "do_orm_execute")
def _scope_to_shop(state: ORMExecuteState) -> None:
    shop_id = state.session.info.get("shop_id")
    if shop_id is None or state.is_column_load or state.is_relationship_load:
        return
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(
            with_loader_criteria(ShopOwned, lambda cls: cls.shop_id == shop_id, include_aliases=True)
        )


@event.listens_for(Session, "before_flush")
def _stamp_shop(session: Session, _ctx: Any, _instances: Any) -> None:
    shop_id = session.info.get("shop_id")
    if shop_id is None:
        return
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, ShopOwned):
            if obj.shop_id is None:
                obj.shop_id = shop_id
            elif obj.shop_id != shop_id:
                raise TenantViolation(f"{type(obj).__name__} of shop {obj.shop_id} written in shop {shop_id}")


class UnitOfWork:
    """A transaction, optionally scoped to one shop."""

    def __init__(self, db: Database, shop_id: int | None = None, *, readonly: bool = False) -> None:
        self.db = db
        self.shop_id = shop_id
        self.readonly = readonly
        self.session: Session

    def __enter__(self) -> UnitOfWork:
        self.session = self.db.session(readonly=self.readonly)
        self.session.info["shop_id"] = self.shop_id
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.session.rollback()
        finally:
            self.session.close()

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    # Small repository helpers: every one goes through the scoped session.
    def get(self, model: type[T], ident: int) -> T:
        row = self.session.scalars(select(model).where(model.id == ident)).first()  # type: ignore[attr-defined]
        if row is None:
            raise NotFound(f"{model.__name__} {ident} not found", model=model.__name__, id=ident)
        return row

    def find(self, model: type[T], **by: Any) -> T | None:
        return self.session.scalars(select(model).filter_by(**by)).first()

    def all(self, stmt: Select[Any]) -> Sequence[Any]:
        return self.session.scalars(stmt).all()

    def add(self, obj: Any) -> Any:
        self.session.add(obj)
        return obj

    def shop(self) -> Shop:
        if self.shop_id is None:
            raise NotFound("no shop bound to this unit of work")
        shop = self.session.get(Shop, self.shop_id)
        if shop is None:
            raise NotFound(f"shop {self.shop_id} not found", id=self.shop_id)
        return shop
