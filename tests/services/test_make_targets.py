"""README's "Run one service locally": `make migrate SERVICE=<s>` and `make run SERVICE=<s> PORT=<p>` work alike for
every service package (the Makefile finds them: a new service needs nothing there), against a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import requests

from tests.support.net import free_port
from tests.support.postgres import wait_until

from .conftest import write_keys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVICES = sorted(d for d in os.listdir(f"{ROOT}/services") if os.path.isfile(f"{ROOT}/services/{d}/{d}/__init__.py"))


def _make(target: str, service: str, env: dict[str, str], **kw) -> subprocess.Popen:
    # `-o venv`: the venv is the one running these tests (make setup made it); nothing from the caller's shell.
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "ATLAS_", "USERS_SERVICE_"))}
    argv = ["make", "--no-print-directory", "-o", "venv", target, f"SERVICE={service}", *kw.pop("args", [])]
    return subprocess.Popen(
        argv, cwd=ROOT, env={**clean, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group: make and the server it runs are stopped together
    )  # fmt: skip


def test_every_service_package_is_found():
    assert SERVICES == ["auth", "projects", "users"]


@pytest.mark.parametrize("service", SERVICES)
def test_make_migrate_then_make_run_serve_the_service(service, database, key_pems, tmp_path):
    migrated = _make("migrate", service, database)
    out, _ = migrated.communicate(timeout=120)
    assert migrated.returncode == 0, out
    assert "applied 0001_" in out

    port = free_port()
    env = dict(database)
    if service == "auth":  # the key and the issuer it refuses to start without
        env["ATLAS_AUTH_SIGNING_KEY_FILE"] = write_keys(str(tmp_path / "keys.pem"), key_pems["old"])
        env["ATLAS_AUTH_ISSUER"] = f"http://127.0.0.1:{port}"
    server = _make("run", service, env, args=[f"PORT={port}"])
    try:

        def ready() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except requests.ConnectionError:
                return server.poll() is not None  # stop waiting: it exited

        wait_until(ready, timeout=30)
        assert server.poll() is None, server.stdout.read()
        assert requests.get(f"http://127.0.0.1:{port}/db-status", timeout=5).json()["connected"] is True
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # what Ctrl-C in make's terminal does: the whole group
        server.communicate(timeout=60)


def test_make_run_refuses_an_unknown_service():
    proc = _make("run", "billing", {})
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert out.splitlines()[0] == "SERVICE must be one of: auth projects users, got 'billing'"
