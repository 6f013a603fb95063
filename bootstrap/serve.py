"""``backorders serve`` / ``worker`` / ``clock`` / ``scheduler``: the long-running processes.

Embedded (default): ``serve`` runs the web app and the APScheduler thread pool in one process
on SQLite; a file lock keeps one scheduler even when gunicorn forks workers. Scaled out
(``JOB_BACKEND=celery``): ``serve`` (or gunicorn ``wsgi:app``) only serves, ``clock`` enqueues on
a PostgreSQL advisory lock (a second clock waits), and ``worker`` runs the jobs in Celery.
"""

from __future__ import annotations

import logging
import os

from bootstrap.runtime import build_runtime, build_web_app
from bootstrap.wiring import configure_logging
from connector.config import Settings

log = logging.getLogger(__name__)


def serve(settings: Settings, host: str, port: int) -> int:
    configure_logging(settings)
    rt = build_runtime(settings)
    app = build_web_app(rt)
    handle = None
    if settings.job_backend == "embedded":
        from jobs.scheduler import start_embedded_scheduler

        handle = start_embedded_scheduler(rt.job_ctx)
    try:
        app.run(host=host, port=port, debug=False, use_reloader=False, threaded=True)
    finally:
        if handle is not None:
            handle.shutdown()
    return 0


def worker(settings: Settings, argv: list[str]) -> int:
    configure_logging(settings)
    os.environ.setdefault("BACKORDERS_JOB_CONTEXT", "bootstrap.runtime:job_context")
    from bootstrap.runtime import job_context
    from jobs.celery_app import worker_main

    return worker_main(job_context, argv, settings)


def clock(settings: Settings) -> int:
    configure_logging(settings)
    from jobs.clock import main

    rt = build_runtime(settings)
    return main(settings, rt.db)


def scheduler(settings: Settings) -> int:
    configure_logging(settings)
    from jobs.scheduler import main

    return main(build_runtime(settings).job_ctx)
