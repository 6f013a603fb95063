"""Settings, read once from the environment (and ``.env`` when present) into a typed object.

Nothing here runs at import time: the composition roots (``wsgi.py``, the CLI, the job
runners, the tests) call :func:`load_settings` and pass the result down.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from connector.errors import ConfigError

DEFAULT_SQLITE_URL = "sqlite:///var/backorders.sqlite3"

# Only for the demo and tests: a fixed key makes runs repeatable. load_settings refuses to use it
# outside of demo mode so a production deployment cannot forget to set its own key.
DEMO_FERNET_KEY = "ZGVtby1rZXktZm9yLXRoZS1iYWNrb3JkZXItY29ubmU="


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_SQLITE_URL
    # Fernet keys, newest first; the first encrypts, all decrypt (rotation through MultiFernet).
    fernet_keys: tuple[str, ...] = ()
    secret_key: str = ""
    app_url: str = "http://127.0.0.1:5000"
    shopify_api_key: str = ""
    shopify_api_secret: str = ""
    shopify_api_version: str = "2026-04"
    # A first pull of a Shopify shop with more orders than this uses a bulk operation, not paging.
    shopify_bulk_backfill_orders: int = 2000
    shopify_scopes: tuple[str, ...] = (
        "read_orders",
        "write_orders",
        "read_products",
        "write_products",
        "read_inventory",
        "read_locations",
        "write_merchant_managed_fulfillment_orders",
    )
    webhook_max_bytes: int = 1_000_000
    # Web processes on a SQLite file hand webhook deliveries to one writer process, which commits
    # them on its one connection (connector/services/webhook_writer.py). Off: each commits its own.
    webhook_writer: bool = True
    smtp_url: str = "smtp://127.0.0.1:8025"
    mail_from: str = "backorders@localhost"
    job_backend: str = "embedded"
    celery_broker_url: str = "redis://127.0.0.1:6379/0"
    scheduler_lock_path: str = "var/scheduler.lock"
    sqlite_busy_timeout_ms: int = 30_000
    log_level: str = "INFO"
    demo: bool = False
    # Delivery attempts before an outbox message is dead: 14 with the 30 s doubling backoff
    # (6 h cap, equal jitter) keeps a message waiting 13 to 26 hours through a store outage.
    outbox_max_attempts: int = 14
    # JSON API requests per token and minute, counted in the database so every worker shares them.
    api_read_limit_per_minute: int = 120
    api_write_limit_per_minute: int = 60
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


_ENV_KEYS = {
    "database_url": "DATABASE_URL",
    "fernet_keys": "FERNET_KEYS",
    "secret_key": "SECRET_KEY",
    "app_url": "APP_URL",
    "shopify_api_key": "SHOPIFY_API_KEY",
    "shopify_api_secret": "SHOPIFY_API_SECRET",
    "shopify_api_version": "SHOPIFY_API_VERSION",
    "shopify_bulk_backfill_orders": "SHOPIFY_BULK_BACKFILL_ORDERS",
    "shopify_scopes": "SHOPIFY_SCOPES",
    "webhook_max_bytes": "WEBHOOK_MAX_BYTES",
    "webhook_writer": "WEBHOOK_WRITER",
    "smtp_url": "SMTP_URL",
    "mail_from": "MAIL_FROM",
    "job_backend": "JOB_BACKEND",
    "celery_broker_url": "CELERY_BROKER_URL",
    "scheduler_lock_path": "SCHEDULER_LOCK_PATH",
    "sqlite_busy_timeout_ms": "SQLITE_BUSY_TIMEOUT_MS",
    "log_level": "LOG_LEVEL",
    "demo": "DEMO",
    "outbox_max_attempts": "OUTBOX_MAX_ATTEMPTS",
    "api_read_limit_per_minute": "API_READ_LIMIT_PER_MINUTE",
    "api_write_limit_per_minute": "API_WRITE_LIMIT_PER_MINUTE",
}


def _read_dotenv(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    from dotenv import dotenv_values

    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def load_settings(
    environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env", **overrides: object
) -> Settings:
    """Build :class:`Settings` from ``environ`` (default ``os.environ``) over a ``.env`` file.

    The process environment wins over ``.env`` so that CI and deployments can override a
    developer's file. Unknown keys are ignored; malformed values raise :class:`ConfigError`
    naming the variable.
    """
    source: dict[str, str] = {}
    if dotenv_path is not None:
        source.update(_read_dotenv(Path(dotenv_path)))
    source.update(os.environ if environ is None else environ)

    values: dict[str, object] = {}
    defaults = Settings()
    for f in fields(Settings):
        env_key = _ENV_KEYS.get(f.name)
        if env_key is None or env_key not in source or source[env_key] == "":
            continue
        raw = source[env_key]
        default = getattr(defaults, f.name)
        try:
            if isinstance(default, bool):
                values[f.name] = raw.strip().lower() in {"1", "true", "yes", "on"}
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, tuple):
                values[f.name] = tuple(p.strip() for p in raw.split(",") if p.strip())
            else:
                values[f.name] = raw
        except ValueError as exc:
            raise ConfigError(f"{env_key} must be a number, got {raw!r}", variable=env_key) from exc
    values.update(overrides)
    settings = Settings(**values)  # type: ignore[arg-type]
    if not settings.fernet_keys:
        if not settings.demo:
            raise ConfigError(
                "FERNET_KEYS is not set: generate one with "
                "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`",
                variable="FERNET_KEYS",
            )
        settings = replace(settings, fernet_keys=(DEMO_FERNET_KEY,))
    if not settings.secret_key:
        if not settings.demo:
            raise ConfigError("SECRET_KEY is not set (signs links and sessions)", variable="SECRET_KEY")
        settings = replace(settings, secret_key="demo-secret-key-not-for-production")
    if settings.job_backend not in {"embedded", "celery"}:
        raise ConfigError("JOB_BACKEND must be 'embedded' or 'celery'", variable="JOB_BACKEND")
    for name in ("outbox_max_attempts", "api_read_limit_per_minute", "api_write_limit_per_minute",
                 "shopify_bulk_backfill_orders"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"{_ENV_KEYS[name]} must be at least 1", variable=_ENV_KEYS[name])
    return settings
