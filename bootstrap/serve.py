"""``backorders serve``: the web app (and, once the jobs land, the embedded scheduler)."""

from __future__ import annotations

from bootstrap.wiring import build_database, configure_logging
from connector.config import Settings
from connector.web import create_app


def serve(settings: Settings, host: str, port: int) -> int:
    configure_logging(settings)
    app = create_app(settings, build_database(settings))
    app.run(host=host, port=port, debug=False, use_reloader=False)
    return 0
