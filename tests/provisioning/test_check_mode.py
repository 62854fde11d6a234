"""--check writes nothing and fails on nothing; --diff shows what would change; tags select stages.

Real: ansible-playbook with the project's playbooks and roles, kubernetes.core, the real helm. Stand-in:
docker/minikube/kubectl (tests/provisioning/standins) and the Kubernetes API server (tests/support/kube_api.py),
each reproducing the pinned tool's answers. What only a cluster shows: helm's own dry run of an upgrade.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.provisioning.ansible_run import BIN_DIR, REPO_ROOT, run_playbook
from tests.provisioning.standins import Standins
from tests.support.kube_api import KubeApi

pytestmark = pytest.mark.logic


def _snapshot(root) -> dict[str, tuple[float, bytes]]:
    found = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as fh:
                found[path] = (os.stat(path).st_mtime_ns, fh.read())
    return found


def _diff_after(run, task_suffix: str) -> str:
    """The 'after' side of the diffs a task reported (a module gives a list of them, an action plugin one)."""
    diffs = []
    for result in run.results(task_suffix):
        diff = result.get("diff") or []
        diffs += diff if isinstance(diff, list) else [diff]
    return "".join(d.get("after", "") for d in diffs)


def test_render_check_diff_shows_the_new_value_and_writes_nothing(tmp_path):
    extra = {"atlas_build_dir": str(tmp_path / "build")}
    assert run_playbook("playbooks/render.yml", "dev", extra).rc == 0
    before = _snapshot(tmp_path / "build")

    change = {"atlas_service_overrides": {"users": {"config": {"threads": 8}}}}
    run = run_playbook("playbooks/render.yml", "dev", {**extra, **change}, args=["--check", "--diff"])

    assert run.rc == 0, run.failure_messages()
    assert _snapshot(tmp_path / "build") == before, "check mode changed a file"
    assert "threads: 8" in _diff_after(run, "Write the chart values")
    # ...and the manifests the new value makes (the ConfigMap's ATLAS_THREADS), not an empty file.
    manifests = _diff_after(run, "Write the manifests")
    assert "ATLAS_THREADS: '8'" in manifests or 'ATLAS_THREADS: "8"' in manifests, manifests[:500]
    assert run.changed() == 2  # values.yaml and manifests.yaml would change


def test_site_check_on_a_new_laptop_writes_nothing_and_starts_nothing(tmp_path):
    laptop = Standins(tmp_path / "laptop")
    extra = {"atlas_build_dir": str(tmp_path / "build"), "atlas_credentials_dir": str(tmp_path / "credentials")}
    env = {**laptop.env(), "K8S_AUTH_KUBECONFIG": str(tmp_path / "no-kubeconfig")}

    run = run_playbook("site.yml", "dev", extra, env=env, args=["--check"])

    assert run.rc == 0, run.failure_messages()
    for call in ("start", "delete"):
        assert laptop.calls("minikube", call) == []
    assert laptop.calls("minikube", "addons", "enable") == [] and laptop.calls("minikube", "image", "build") == []
    assert not (tmp_path / "build").exists() and not (tmp_path / "credentials").exists()
    assert laptop.state()["profiles"] == {}
    said = [r.get("msg", "") for r in run.results("Say that check mode has no cluster to compare with")]
    assert any("does not answer" in m for m in said), said


def test_deploy_check_against_a_live_cluster_sends_no_write(tmp_path):
    credentials = tmp_path / "credentials"
    extra = {"atlas_build_dir": str(tmp_path / "build"), "atlas_credentials_dir": str(credentials)}
    with KubeApi() as api:
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "atlas"}})
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", context="atlas-dev")
        run = run_playbook(
            "playbooks/deploy.yml", "dev", extra, env={"K8S_AUTH_KUBECONFIG": kubeconfig}, args=["--check", "--diff"]
        )
        writes = [r for r in api.requests if r.method not in ("GET",) and r.q("dryRun") != "All"]
        assert api.errors == [], api.errors[0]

    assert run.rc == 0, run.failure_messages()
    assert writes == [], [(r.method, r.path) for r in writes]
    assert not credentials.exists(), "check mode generated a password file"
    # The manifest diff: nothing is installed yet, so every object of the chart is new.
    assert "kind: StatefulSet" in _diff_after(run, "Show what the deploy changes in the release's manifests")


def _listed_tasks(*args: str) -> list[str]:
    proc = subprocess.run(
        [os.path.join(BIN_DIR, "ansible-playbook"), "site.yml", "-i", "inventories/dev", "--list-tasks", *args],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "ANSIBLE_CONFIG": os.path.join(REPO_ROOT, "ansible.cfg")},
    )  # fmt: skip
    tasks = [
        line.strip() for line in proc.stdout.splitlines() if "TAGS:" in line and not line.strip().startswith("play")
    ]
    return [t for t in tasks if "Validating arguments against arg spec" not in t]


def test_site_carries_the_stage_tags():
    proc = subprocess.run(
        [os.path.join(BIN_DIR, "ansible-playbook"), "site.yml", "-i", "inventories/dev", "--list-tags"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
        env={**os.environ, "ANSIBLE_CONFIG": os.path.join(REPO_ROOT, "ansible.cfg")},
    )  # fmt: skip
    for tag in ("preflight", "tools", "bootstrap", "images", "deploy", "verify"):
        assert tag in proc.stdout


def test_tags_deploy_runs_settings_values_and_release_only():
    roles = {t.split(" : ")[0] for t in _listed_tasks("--tags", "deploy") if " : " in t}
    # cluster_check: release's own first call; gateway and observability: the gateway controller and the monitoring
    # stack (their tasks are included when on)
    assert roles == {"settings", "gateway", "observability", "values", "release", "cluster_check"}
    assert {t.split(" : ")[0] for t in _listed_tasks("--tags", "preflight") if " : " in t} == {"settings", "minikube"}
