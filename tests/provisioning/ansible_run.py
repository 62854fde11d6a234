"""Run the project's playbooks the way a user does, and read the outcome from Ansible's JSON callback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN_DIR = os.path.dirname(sys.executable)
INVENTORIES = ("dev", "test", "prod")
PROFILES = ("full", "users-only", "projects-only", "ephemeral")


@dataclass
class PlaybookRun:
    rc: int
    seconds: float
    report: dict  # the json callback's document
    stderr: str

    def stats(self, host: str = "localhost") -> dict:
        return self.report.get("stats", {}).get(host, {})

    def changed(self, host: str = "localhost") -> int:
        return self.stats(host).get("changed", 0)

    def failure_messages(self) -> list[str]:
        """The msg of every failed task result (loop items included)."""
        found = []
        for play in self.report.get("plays", []):
            for task in play["tasks"]:
                for result in task["hosts"].values():
                    for r in [result, *result.get("results", [])]:
                        if r.get("failed") and r.get("msg"):
                            found.append(r["msg"])
        return found

    def tasks_run(self) -> list[str]:
        return [task["task"]["name"] for play in self.report.get("plays", []) for task in play["tasks"]]

    def results(self, task_suffix: str, host: str = "localhost") -> list[dict]:
        """The results of every task whose name ends with ``task_suffix`` (loop items flattened)."""
        found = []
        for play in self.report.get("plays", []):
            for task in play["tasks"]:
                if task["task"]["name"].endswith(task_suffix) and host in task["hosts"]:
                    result = task["hosts"][host]
                    found += result.get("results", [result])
        return found


def run_playbook(
    playbook: str,
    inventory: str | None = "dev",
    extra_vars: dict | None = None,
    env: dict | None = None,
    inventory_path: str | None = None,
    extra_inventory: str | None = None,
    limit: str | None = None,
    timeout: int = 300,
    args: list[str] | None = None,
) -> PlaybookRun:
    """ansible-playbook <playbook> -i inventories/<inventory> -e <json> [args], with the project's ansible.cfg.

    extra_inventory adds a second inventory source (e.g. hosts with their own variables) on top; args are
    further command-line options (--check, --diff, --tags ...).
    """
    cmd = [os.path.join(BIN_DIR, "ansible-playbook"), playbook, *(args or [])]
    cmd += ["-i", inventory_path or os.path.join(REPO_ROOT, "inventories", inventory)]
    if extra_inventory:
        cmd += ["-i", extra_inventory]
    if limit:
        cmd += ["--limit", limit]
    if extra_vars:
        cmd += ["-e", json.dumps(extra_vars)]
    full_env = {
        **os.environ,
        "ANSIBLE_CONFIG": os.path.join(REPO_ROOT, "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": os.pathsep.join([os.path.join(REPO_ROOT, ".tools", "bin"), BIN_DIR, os.environ.get("PATH", "")]),
        **(env or {}),
    }
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=timeout)
    seconds = time.monotonic() - start
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"ansible-playbook printed no JSON report (rc={proc.returncode}):\n{proc.stderr}") from exc
    return PlaybookRun(proc.returncode, seconds, report, proc.stderr)
