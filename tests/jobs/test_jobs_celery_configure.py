"""``jobs.celery_app.configure`` wins over the environment.

Celery reads its lazy defaults the first time it routes a task, even after ``configure()``; those
defaults call ``load_settings()``, which refuses an environment without FERNET_KEYS (or DEMO). A
process configured from explicit settings must enqueue without ever consulting the environment.
Run in a fresh interpreter with an empty environment so nothing of this process's state helps.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

ENQUEUE = """
import json
from connector.config import Settings
from jobs import celery_app

celery_app.configure(Settings(celery_broker_url="memory://", fernet_keys=("k",), secret_key="s"), queue="q-h8")
celery_app.enqueue_job("deliver_outbox")
with celery_app.app.connection_for_read() as conn:
    queue = conn.SimpleQueue("q-h8")
    message = queue.get(timeout=5)
    message.ack()
print(json.dumps({"task": message.headers["task"], "args": message.payload[0],
                  "broker": celery_app.app.conf.broker_url}))
"""


def test_a_process_configured_with_explicit_settings_enqueues_without_reading_the_environment(tmp_path: Path) -> None:
    # No FERNET_KEYS, no DEMO, no .env in the working directory: load_settings() would raise.
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", ENQUEUE], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    sent = json.loads(done.stdout.strip().splitlines()[-1])
    assert sent == {"task": "backorders.fan_out", "args": ["deliver_outbox"], "broker": "memory://"}


def test_without_configure_the_lazy_defaults_still_come_from_the_environment(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "DEMO": "1", "CELERY_BROKER_URL": "memory://env"}
    code = "from jobs import celery_app; print(celery_app.app.conf.broker_url)"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "memory://env"
