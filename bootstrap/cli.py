"""The ``backorders`` command: database, demo, scenarios, serving."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from connector.errors import ConnectorError


def _settings(args: argparse.Namespace, **overrides: Any) -> Any:
    from connector.config import load_settings

    if getattr(args, "database_url", None):
        overrides["database_url"] = args.database_url
    return load_settings(**overrides)


def cmd_db(args: argparse.Namespace) -> int:
    from bootstrap.wiring import build_database
    from connector.db import migrate

    settings = _settings(args, demo=True) if args.demo_keys else _settings(args)
    db = build_database(settings)
    try:
        if args.action == "upgrade":
            migrate.upgrade(db, args.revision or "head")
            print(f"database at {migrate.current_revision(db)}")
        elif args.action == "downgrade":
            migrate.downgrade(db, args.revision or "base")
            print(f"database at {migrate.current_revision(db) or 'base'}")
        elif args.action == "current":
            print(migrate.current_revision(db) or "base")
        elif args.action == "rotate-keys":
            from bootstrap.maintenance import rotate_credentials

            print(f"re-encrypted {rotate_credentials(db)} credential values under the newest key")
    finally:
        db.dispose()
    return 0


def cmd_scenario(args: argparse.Namespace) -> int:
    import yaml

    from connector import crypto
    from connector.config import DEMO_FERNET_KEY
    from connector.scenario import ScenarioError, run_scenario

    crypto.configure_cipher([DEMO_FERNET_KEY])  # a scenario stores no real credential
    try:
        spec = yaml.safe_load(Path(args.file).read_text())
    except (OSError, yaml.YAMLError) as exc:
        print(f"error: cannot read scenario {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        result = run_scenario(spec, args.database_url)
    except ScenarioError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2
    print(json.dumps(result, sort_keys=True, indent=None if args.compact else 2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bootstrap.demo import run_demo

    return run_demo(once=args.once, as_json=args.json, host=args.host, port=args.port, database_url=args.database_url)


def cmd_inspect(args: argparse.Namespace) -> int:
    from bootstrap.inspect_payload import inspect_payload

    return inspect_payload(args.platform, args.kind, args.file)


def cmd_serve(args: argparse.Namespace) -> int:
    from bootstrap.serve import serve

    return serve(_settings(args), host=args.host, port=args.port)


def cmd_worker(args: argparse.Namespace) -> int:
    from bootstrap.serve import worker

    return worker(_settings(args), args.celery_args)


def cmd_clock(args: argparse.Namespace) -> int:
    from bootstrap.serve import clock

    return clock(_settings(args))


def cmd_scheduler(args: argparse.Namespace) -> int:
    from bootstrap.serve import scheduler

    return scheduler(_settings(args))


def cmd_run_job(args: argparse.Namespace) -> int:
    from bootstrap.runtime import build_runtime
    from jobs.runner import run_job_for_all_shops

    rt = build_runtime(_settings(args))
    report = run_job_for_all_shops(rt.job_ctx, args.job, rt.clock())
    print(json.dumps(report.as_dict() if hasattr(report, "as_dict") else repr(report), default=str))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backorders", description=__doc__)
    parser.add_argument("--database-url", help="overrides DATABASE_URL")
    sub = parser.add_subparsers(dest="command", required=True)

    db = sub.add_parser("db", help="apply or inspect the migrations")
    db.add_argument("action", choices=["upgrade", "downgrade", "current", "rotate-keys"])
    db.add_argument("revision", nargs="?")
    db.add_argument("--demo-keys", action="store_true", help="use the demo's fixed keys (never in production)")
    db.set_defaults(func=cmd_db)

    sc = sub.add_parser("scenario", help="run a scripted case on a fresh database and print the end state")
    sc.add_argument("file")
    sc.add_argument("--compact", action="store_true", help="one line of JSON")
    sc.set_defaults(func=cmd_scenario)

    demo = sub.add_parser("demo", help="the main job on the embedded default (SQLite, sandbox stores)")
    demo.add_argument("--once", action="store_true", help="run one cycle and exit")
    demo.add_argument("--json", action="store_true", help="print one JSON summary line")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=5000)
    demo.set_defaults(func=cmd_demo)

    ins = sub.add_parser("inspect", help="print the normalized record of a webhook payload file")
    ins.add_argument("platform", choices=["shopify", "woocommerce"])
    ins.add_argument("kind", choices=["order", "product", "inventory_level"])
    ins.add_argument("file")
    ins.set_defaults(func=cmd_inspect)

    serve = sub.add_parser("serve", help="the web app and the embedded scheduler in one process")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=5000)
    serve.set_defaults(func=cmd_serve)

    wk = sub.add_parser("worker", help="a Celery worker (JOB_BACKEND=celery); extra args go to `celery worker`")
    wk.add_argument("celery_args", nargs=argparse.REMAINDER)
    wk.set_defaults(func=cmd_worker)
    sub.add_parser("clock", help="the scaled-out clock: enqueues jobs; a second one stands by").set_defaults(
        func=cmd_clock)
    sub.add_parser("scheduler", help="the embedded scheduler alone, in the foreground").set_defaults(
        func=cmd_scheduler)
    rj = sub.add_parser("run-job", help="run one job now for every due shop (consolidate, deliver_outbox, ...)")
    rj.add_argument("job")
    rj.set_defaults(func=cmd_run_job)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConnectorError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
