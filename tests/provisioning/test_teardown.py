"""make destroy keeps the data; DELETE_DATA=yes deletes the databases' and their backups' claims and the Secrets, only
once confirmed, and nothing that is not Atlas'.

Real: ansible-playbook with playbooks/teardown.yml (settings, tools, release and cluster_check roles),
kubernetes.core, the real helm (its uninstall finds no release). Stand-in: the Kubernetes API server
(tests/support/kube_api.py).
"""

from __future__ import annotations

import pytest

from tests.provisioning.ansible_run import run_playbook
from tests.support.kube_api import KubeApi

pytestmark = pytest.mark.logic

SERVICES = ("users", "projects")


@pytest.fixture
def cluster(tmp_path):
    with KubeApi() as api:
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "atlas"}})
        for service in SERVICES:
            labels = {
                "app.kubernetes.io/name": "atlas",
                "app.kubernetes.io/instance": "atlas",
                "app.kubernetes.io/component": f"{service}-postgresql",
            }
            api.add(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {"name": f"data-atlas-{service}-postgresql-0", "namespace": "atlas", "labels": labels},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                }
            )
            # The scheduled backups' claim (charts/atlas/templates/postgresql-backup.yaml), kept by helm uninstall
            backup_labels = {**labels, "app.kubernetes.io/component": f"{service}-postgresql-backup"}
            api.add(
                {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "metadata": {
                        "name": f"atlas-{service}-postgresql-backup",
                        "namespace": "atlas",
                        "labels": backup_labels,
                    },
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "2Gi"}}},
                }
            )
            api.add(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {"name": f"atlas-{service}-db", "namespace": "atlas"},
                    "data": {"password": "c2VjcmV0"},
                }
            )
        # Not Atlas' data: another release's claim in the same namespace stays whatever is asked
        other = {"app.kubernetes.io/instance": "other", "app.kubernetes.io/component": "users-postgresql"}
        api.add(
            {
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": {"name": "data-other-0", "namespace": "atlas", "labels": other},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
            }
        )
        api.kubeconfig_path = api.kubeconfig(tmp_path / "kubeconfig", context="atlas-dev")
        yield api
        assert api.errors == [], api.errors[0]


def _teardown(api: KubeApi, **extra):
    return run_playbook("playbooks/teardown.yml", "dev", extra, env={"K8S_AUTH_KUBECONFIG": api.kubeconfig_path})


def _left(api: KubeApi) -> tuple[list[str], list[str]]:
    return (
        sorted(o["metadata"]["name"] for o in api.objects("PersistentVolumeClaim", "atlas")),
        sorted(o["metadata"]["name"] for o in api.objects("Secret", "atlas")),
    )


def test_destroy_keeps_the_data(cluster):
    run = _teardown(cluster)

    assert run.rc == 0, run.failure_messages()
    assert _left(cluster) == (
        [
            "atlas-projects-postgresql-backup",
            "atlas-users-postgresql-backup",
            "data-atlas-projects-postgresql-0",
            "data-atlas-users-postgresql-0",
            "data-other-0",
        ],
        ["atlas-projects-db", "atlas-users-db"],
    )


def test_delete_data_without_confirmation_touches_nothing(cluster):
    run = _teardown(cluster, delete_data="yes")

    assert run.rc != 0
    assert any(m.startswith("delete_data: not confirmed, nothing was deleted") for m in run.failure_messages())
    assert cluster.requests == []  # stopped before any cluster call
    assert len(_left(cluster)[0]) == 5


def test_delete_data_confirmed_removes_claims_and_secrets(cluster):
    run = _teardown(cluster, delete_data="yes", confirm="yes")

    assert run.rc == 0, run.failure_messages()
    assert _left(cluster) == (["data-other-0"], [])
