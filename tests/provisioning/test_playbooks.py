"""Every playbook parses against every inventory, and `make deploy` on a host without a running Docker
engine (this one) stops in preflight within seconds, saying why and how to fix it."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

import pytest

from tests.provisioning.ansible_run import BIN_DIR, INVENTORIES, REPO_ROOT, run_playbook

PLAYBOOKS = ["site.yml", *sorted(os.path.relpath(p, REPO_ROOT) for p in glob.glob(f"{REPO_ROOT}/playbooks/*.yml"))]


def test_every_entry_point_exists():
    names = {os.path.basename(p) for p in PLAYBOOKS}
    assert names >= {
        "site.yml",
        "bootstrap.yml",
        "images.yml",
        "deploy.yml",
        "verify.yml",
        "render.yml",
        "teardown.yml",
    }


@pytest.mark.parametrize("inventory", INVENTORIES)
def test_syntax_check(inventory):
    proc = subprocess.run(
        [os.path.join(BIN_DIR, "ansible-playbook"), "--syntax-check", "-i", f"inventories/{inventory}", *PLAYBOOKS],
        cwd=REPO_ROOT,
        env={**os.environ, "ANSIBLE_CONFIG": os.path.join(REPO_ROOT, "ansible.cfg")},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _docker_engine_answers() -> bool | None:
    if not shutil.which("docker"):
        return None
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(_docker_engine_answers() is not False, reason="needs the docker client without a running engine")
def test_deploy_without_docker_engine_stops_in_preflight():
    run = run_playbook("site.yml", "dev", timeout=120)

    assert run.rc != 0
    [message] = run.failure_messages()
    assert message.startswith("preflight: the docker engine is not running (")
    assert "Fix: start it (sudo systemctl start docker)" in message
    # It stopped before any tool lookup, download or cluster call, without waiting on anything: the bound is a
    # hang guard (preflight's own timeouts are 15 s per probe), not a speed assertion - these machines are noisy.
    assert "Look for each tool and its version" not in run.tasks_run()
    assert run.seconds < 100, f"preflight took {run.seconds:.1f}s"
