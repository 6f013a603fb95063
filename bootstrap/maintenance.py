"""Operational chores that are not use cases of the product."""

from __future__ import annotations

from sqlalchemy import select

from connector.db.engine import Database
from connector.db.models import Shop, Supplier
from connector.db.uow import UnitOfWork


def rotate_credentials(db: Database) -> int:
    """Re-encrypt every stored credential under the newest Fernet key.

    Reading decrypts with whichever key matches; writing encrypts with the first key, so marking
    each value dirty and committing is the rotation.
    """
    from sqlalchemy.orm.attributes import flag_modified

    count = 0
    with UnitOfWork(db) as uow:
        for shop in uow.session.scalars(select(Shop)):
            for attr in ("credentials", "webhook_secret"):
                if getattr(shop, attr) is not None:
                    flag_modified(shop, attr)
                    count += 1
        for supplier in uow.session.scalars(select(Supplier)):
            if supplier.webhook_secret is not None:
                flag_modified(supplier, "webhook_secret")
                count += 1
        uow.commit()
    return count
