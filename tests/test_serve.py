"""``backorders db upgrade`` then ``backorders serve``: the production entry points start and answer."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_answers_health_and_the_shopper_page_after_db_upgrade(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.sqlite3'}",
        "FERNET_KEYS": Fernet.generate_key().decode(),
        "SECRET_KEY": "a-test-secret",
        "SCHEDULER_LOCK_PATH": str(tmp_path / "scheduler.lock"),
        "DEMO": "0",
    }
    up = subprocess.run([sys.executable, "-m", "bootstrap.cli", "db", "upgrade"], env=env, cwd=tmp_path,
                        capture_output=True, text=True, timeout=60)
    assert up.returncode == 0, up.stderr
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bootstrap.cli", "serve", "--port", str(port)], env=env,
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "serve did not answer within 30 s"
                time.sleep(0.3)
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        assert requests.get(f"http://127.0.0.1:{port}/merchant/login", timeout=5).status_code == 200
        assert requests.get(f"http://127.0.0.1:{port}/shop/nowhere.example/backorders", timeout=5).status_code == 404
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        if proc.stdout is not None:
            proc.stdout.close()


def test_settings_without_keys_are_refused_with_a_clear_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"FERNET_KEYS", "SECRET_KEY", "DEMO"}}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    proc = subprocess.run([sys.executable, "-m", "bootstrap.cli", "db", "upgrade"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "FERNET_KEYS is not set" in proc.stderr
