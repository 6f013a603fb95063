"""Emulated WooCommerce store (REST API v3 over loopback) for tests and the demo."""

from .demo import seed_demo_store
from .server import ApiKey, Delivery, LoggedRequest, SandboxWoo
from .store import RestError, WooStore

__all__ = ["ApiKey", "Delivery", "LoggedRequest", "RestError", "SandboxWoo", "WooStore", "seed_demo_store"]
