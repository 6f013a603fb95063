"""The process the crash-loop test kills: job cycles against the world's SQLite file.

``python crash_child.py CONFIG_JSON [final]`` builds the runtime the way ``bootstrap.demo`` does
(same settings, same sandboxes, same SMTP sink — those live in the test process) and runs job
cycles at a fixed clock until nothing is pending:

    process_webhooks -> consolidate -> dropship_check -> (merchant approves ready POs)
    -> deliver_outbox -> recompute_etas

The clock is ``t_jobs``; with ``final`` it is ``t_final`` (later than the outbox lease), the pass
that picks up what a killed process left claimed. Prints one line per step (the test's log).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, or_, select  # noqa: E402

from bootstrap.runtime import build_runtime  # noqa: E402
from connector.config import load_settings  # noqa: E402
from connector.db.models import OutboxMessage, PurchaseOrder, Shop, WebhookEvent  # noqa: E402
from connector.db.uow import UnitOfWork  # noqa: E402
from connector.services.purchasing import send_purchase_order  # noqa: E402
from jobs.runner import run_job_for_all_shops  # noqa: E402

MAX_CYCLES = 8


T_START = time.monotonic()


def say(text: str) -> None:
    print(f"{time.monotonic() - T_START:6.3f} {text}", flush=True)


def pending(db, now: datetime) -> dict[str, int]:  # type: ignore[no-untyped-def]
    with UnitOfWork(db, readonly=True) as uow:
        s = uow.session
        return {
            "webhooks": int(s.scalar(select(func.count()).select_from(WebhookEvent)
                                     .where(WebhookEvent.processed_at.is_(None))) or 0),
            "outbox": int(s.scalar(select(func.count()).select_from(OutboxMessage).where(
                OutboxMessage.state.in_(("pending", "sending")),
                or_(OutboxMessage.next_attempt_at <= now, OutboxMessage.state == "pending"))) or 0),
            "ready_pos": int(s.scalar(select(func.count()).select_from(PurchaseOrder)
                                      .where(PurchaseOrder.status == "ready")) or 0),
        }


def main() -> int:
    config = json.loads(sys.argv[1])
    final = len(sys.argv) > 2 and sys.argv[2] == "final"
    now = datetime.fromisoformat(config["t_final" if final else "t_jobs"])
    settings = load_settings(
        {}, dotenv_path=None, demo=True, database_url=config["database_url"], app_url=config["app_url"],
        smtp_url=config["smtp_url"], shopify_api_key=config["shopify_api_key"],
        shopify_api_secret=config["shopify_api_secret"], shopify_api_version="2025-01",
        mail_from="backorders@demo.example", scheduler_lock_path=config["scheduler_lock_path"],
    )
    base_url = config["shopify_base_url"]
    rt = build_runtime(settings, shopify_base_url_for=lambda _shop: base_url, clock=lambda: now)
    rt.kick_enabled = False
    ctx = rt.job_ctx
    say(f"start {'final' if final else 'crash'} at {now.isoformat()}")
    for cycle in range(MAX_CYCLES):
        run_job_for_all_shops(ctx, "process_webhooks", now)
        say(f"{cycle} process_webhooks")
        run_job_for_all_shops(ctx, "consolidate", now)
        say(f"{cycle} consolidate")
        run_job_for_all_shops(ctx, "dropship_check", now)
        say(f"{cycle} dropship_check")
        with UnitOfWork(rt.db, readonly=True) as uow:
            ready = list(uow.session.execute(select(PurchaseOrder.shop_id, PurchaseOrder.id)
                                             .join(Shop, Shop.id == PurchaseOrder.shop_id)
                                             .where(PurchaseOrder.status == "ready").order_by(PurchaseOrder.id)))
        for shop_id, po_id in ready:
            send_purchase_order(rt.db, shop_id, po_id, now)
        say(f"{cycle} approved {len(ready)}")
        run_job_for_all_shops(ctx, "deliver_outbox", now)
        say(f"{cycle} deliver_outbox")
        run_job_for_all_shops(ctx, "recompute_etas", now)
        say(f"{cycle} recompute_etas")
        left = pending(rt.db, now)
        say(f"{cycle} pending {json.dumps(left, sort_keys=True)}")
        if not any(left.values()):
            say("done")
            rt.db.dispose()
            return 0
    say("gave up: still pending")
    rt.db.dispose()
    return 3


if __name__ == "__main__":
    sys.exit(main())
