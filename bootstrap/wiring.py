"""Composition root helpers: read settings once and build the process's collaborators."""

from __future__ import annotations

import logging

from connector import crypto
from connector.config import Settings
from connector.db.engine import Database


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=getattr(logging, settings.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )


def build_database(settings: Settings) -> Database:
    """Install the credential cipher and open the database named by the settings."""
    crypto.configure_cipher(settings.fernet_keys)
    return Database(settings.database_url, busy_timeout_ms=settings.sqlite_busy_timeout_ms)
