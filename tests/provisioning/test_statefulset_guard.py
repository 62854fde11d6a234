"""The StatefulSet guard: a change Kubernetes refuses on a database's StatefulSet stops the deploy before
anything is sent, naming the setting and the procedure (docs/troubleshooting.md, case 16).

Real: ansible-playbook with playbooks/deploy.yml (settings, values, release roles), kubernetes.core, the
real helm (the values role's local render). Stand-in: the Kubernetes API server (tests/support/kube_api.py),
given the database StatefulSet as the apiserver answers for an installed release: the rendered object plus
what the apiserver defaults (kubernetes/kubernetes pkg/apis/apps/v1/defaults.go: podManagementPolicy,
updateStrategy, revisionHistoryLimit, persistentVolumeClaimRetentionPolicy; core defaults: the claim's
volumeMode Filesystem) and a status. The upgrade that would fail is only shown on a cluster (cluster tests).
"""

from __future__ import annotations

import copy
import importlib.util

import pytest
import yaml

from tests.provisioning.ansible_run import REPO_ROOT, run_playbook
from tests.support.chart import render
from tests.support.kube_api import KubeApi

pytestmark = pytest.mark.logic

_spec = importlib.util.spec_from_file_location("sts", f"{REPO_ROOT}/roles/release/filter_plugins/statefulsets.py")
guard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(guard)


def _live(rendered: dict) -> dict:
    """The StatefulSet as `kubectl get -o json` shows it after install: the rendered object with defaults."""
    live = copy.deepcopy(rendered)
    spec = live["spec"]
    spec.setdefault("podManagementPolicy", "OrderedReady")
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
    spec.setdefault("persistentVolumeClaimRetentionPolicy", {"whenDeleted": "Retain", "whenScaled": "Retain"})
    for claim in spec.get("volumeClaimTemplates", []):
        claim["apiVersion"], claim["kind"] = "v1", "PersistentVolumeClaim"
        claim["spec"].setdefault("volumeMode", "Filesystem")
        claim["status"] = {"phase": "Pending"}
    live["status"] = {"replicas": 1, "readyReplicas": 1, "currentReplicas": 1, "updatedReplicas": 1}
    return live


def _statefulset(values: dict | None = None, name: str = "atlas-users-postgresql") -> dict:
    return next(d for d in render(values or {}) if d["kind"] == "StatefulSet" and d["metadata"]["name"] == name)


def _rendered_text(values: dict | None = None) -> str:
    return yaml.safe_dump_all(render(values or {}))


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"users.postgresql.persistence.size": "5Gi"}, "users.postgresql.persistence.size: 1Gi -> 5Gi"),
        (
            {"users.postgresql.persistence.storageClass": "fast"},
            "users.postgresql.persistence.storageClass: (default) -> fast",
        ),
        (
            {"users.postgresql.persistence.accessModes": ["ReadWriteOncePod"]},
            "users.postgresql.persistence.accessModes",
        ),
        (
            {"users.postgresql.persistence.enabled": False},
            "users.postgresql.persistence.enabled: the volume claims would go",
        ),
    ],
    ids=["size", "storage-class", "access-modes", "persistence-off"],
)
def test_each_refused_change_names_its_setting(change, named):
    [problem] = guard.statefulset_changes([_live(_statefulset())], _rendered_text(change))
    assert problem.startswith("users: the StatefulSet atlas-users-postgresql cannot be changed in place (")
    assert named in problem and "docs/troubleshooting.md, case 16" in problem


def test_allowed_changes_and_equal_sizes_pass():
    live = [_live(_statefulset()), _live(_statefulset(name="atlas-projects-postgresql"))]
    assert guard.statefulset_changes(live, _rendered_text()) == []
    # The template (image, resources) may change; so may the size's spelling.
    assert guard.statefulset_changes(live, _rendered_text({"users.postgresql.image.tag": "17.7-alpine"})) == []
    assert guard.statefulset_changes(live, _rendered_text({"users.postgresql.persistence.size": "1024Mi"})) == []
    # A database that is not installed yet has nothing to compare with.
    assert guard.statefulset_changes([], _rendered_text({"users.postgresql.persistence.size": "5Gi"})) == []


def test_a_chart_change_to_another_immutable_field_is_refused_too():
    live = _live(_statefulset())
    live["spec"]["serviceName"] = "atlas-users-db"
    [problem] = guard.statefulset_changes([live], _rendered_text())
    assert "spec.serviceName (a chart change): atlas-users-db -> atlas-users-postgresql" in problem


def _deploy(api: KubeApi, tmp_path, **extra):
    # The Atlas release only: the monitoring stack's and the gateway controller's charts come from chart repositories
    # and Docker Hub, out of reach here (tests/provisioning/test_observability.py, test_gateway.py).
    extra = {
        "atlas_build_dir": str(tmp_path / "build"),
        "atlas_credentials_dir": str(tmp_path / "cred"),
        "atlas_observability": {"enabled": False},
        "gateway_enabled": False,
        **extra,
    }
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", context="atlas-dev")
    return run_playbook("playbooks/deploy.yml", "dev", extra, env={"K8S_AUTH_KUBECONFIG": kubeconfig})


@pytest.fixture
def installed():
    """A cluster where the full profile is installed: its two database StatefulSets as the apiserver has them."""
    with KubeApi() as api:
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "atlas"}})
        for service in ("users", "projects"):
            api.add(_live(_statefulset(name=f"atlas-{service}-postgresql")))
        yield api
        assert api.errors == [], api.errors[0]


def test_switching_to_the_ephemeral_profile_stops_before_any_write(installed, tmp_path):
    run = _deploy(installed, tmp_path, atlas_profile="ephemeral")

    assert run.rc != 0
    [message] = [m for m in run.failure_messages() if "cannot be changed in place" in m]
    for service in ("users", "projects"):
        assert f"{service}: the StatefulSet atlas-{service}-postgresql cannot be changed in place" in message
        assert f"{service}.postgresql.persistence.enabled: the volume claims would go" in message
    assert [r for r in installed.requests if r.method != "GET"] == []
    assert not (tmp_path / "cred").exists()


def test_a_bigger_volume_stops_naming_the_size(installed, tmp_path):
    overrides = {"atlas_service_overrides": {"users": {"postgresql": {"persistence": {"size": "5Gi"}}}}}
    run = _deploy(installed, tmp_path, **overrides)

    assert run.rc != 0
    [message] = [m for m in run.failure_messages() if "cannot be changed in place" in m]
    assert "users.postgresql.persistence.size: 1Gi -> 5Gi" in message and "projects" not in message


def test_an_unchanged_database_passes_the_guard(installed, tmp_path):
    run = _deploy(installed, tmp_path)

    # The stand-in serves only what the roles call, so helm's own install stops the run afterwards.
    assert "release : Stop before an upgrade Kubernetes would refuse" in run.tasks_run()
    assert not [m for m in run.failure_messages() if "cannot be changed in place" in m]
    assert "release : Create the namespace" in run.tasks_run()
