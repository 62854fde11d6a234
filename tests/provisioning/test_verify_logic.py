"""playbooks/verify.yml after a rolling upgrade: it checks a Ready pod that is not on its way out, and
survives a pod that goes between being picked and being asked.

Real: ansible-playbook, the settings and verify roles, kubernetes.core 6.2.0's k8s_info and k8s_exec with
the kubernetes client. Stand-in: the Kubernetes API server (tests/support/kube_api.py, its answers'
sources named there) and what the pods answer inside (exec handlers returning the services' JSON).
What only a real cluster shows: the rollout itself and the services' own answers (make molecule-cluster).
"""

from __future__ import annotations

import json

import pytest

from tests.provisioning.ansible_run import run_playbook
from tests.provisioning.verify_cluster import CONNECTED, NS, labels, probes
from tests.support.kube_api import KubeApi, PodNotFound

pytestmark = [pytest.mark.logic, pytest.mark.slow]

# The rollout logic on the two APIs of a profile without tokens (auth and the token checks:
# tests/provisioning/test_verify_tokens.py).
PROFILE = "ephemeral"
SERVICES = ("users", "projects")
NO_TOKENS = {"atlas_profile": PROFILE, "atlas_profiles": {PROFILE: {"services": list(SERVICES), "persistence": False}}}


@pytest.fixture
def cluster(tmp_path):
    """Both Deployments rolled out; each service's pods as the test sets them up."""
    with KubeApi() as api:
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        for service in SERVICES:
            api.add(KubeApi.deployment(f"atlas-{service}", NS, replicas=1, labels=labels(service)))
        api.kubeconfig_path = api.kubeconfig(tmp_path / "kubeconfig", context="atlas-dev")
        yield api
        assert api.errors == [], api.errors[0]


def _pod(api: KubeApi, service: str, name: str, terminating: bool = False, ready: bool = True) -> dict:
    pod = KubeApi.pod(name, NS, labels=labels(service), containers=[service], ready=ready)
    if terminating:  # the old ReplicaSet's pod after a rollout: still Running, still Ready, being deleted
        pod["metadata"]["deletionTimestamp"] = "2026-12-01T10:00:00Z"
        pod["metadata"]["deletionGracePeriodSeconds"] = 30
    return api.add(pod)


def _verify(api: KubeApi, **extra):
    # Only the services' own checks: the gateway's status and tokens are test_verify_tokens.py's.
    extra = {**NO_TOKENS, "atlas_entry": "ingress", **extra}
    return run_playbook("playbooks/verify.yml", "dev", extra, env={"K8S_AUTH_KUBECONFIG": api.kubeconfig_path})


def _exec_pods(api: KubeApi) -> list[str]:
    return [r.path.split("/pods/")[1].split("/")[0] for r in api.requests_for("GET") if r.path.endswith("/exec")]


def test_terminating_pods_are_never_checked_and_a_vanished_one_is_replaced(cluster):
    # users: the Terminating pod comes first in the listing; it must not be the one asked.
    _pod(cluster, "users", "atlas-users-0old", terminating=True)
    _pod(cluster, "users", "atlas-users-1new")
    cluster.on_exec(NS, "atlas-users-0old", "users", lambda command: (_ for _ in ()).throw(PodNotFound()))
    cluster.on_exec(NS, "atlas-users-1new", "users", probes())
    # projects: the pod picked first is gone by the time it is asked (scaled down); another one answers.
    _pod(cluster, "projects", "atlas-projects-b")
    _pod(cluster, "projects", "atlas-projects-a")

    def gone(command):
        cluster.remove("Pod", NS, "atlas-projects-b")
        raise PodNotFound()

    cluster.on_exec(NS, "atlas-projects-b", "projects", gone)
    cluster.on_exec(NS, "atlas-projects-a", "projects", probes())

    run = _verify(cluster)

    assert run.rc == 0, run.failure_messages()
    asked = _exec_pods(cluster)
    assert "atlas-users-0old" not in asked
    assert asked.count("atlas-users-1new") == 2  # /readyz and /db-status
    assert asked.index("atlas-projects-a") > asked.index("atlas-projects-b")  # the retry picked another pod


def test_a_database_that_is_not_connected_fails_naming_the_service_and_pod(cluster):
    for service in SERVICES:
        _pod(cluster, service, f"atlas-{service}-0")
        answer = CONNECTED if service == "users" else json.dumps({"connected": False, "error": "OperationalError"})
        cluster.on_exec(
            NS, f"atlas-{service}-0", service, probes(answer if isinstance(answer, bytes) else answer.encode())
        )

    run = _verify(cluster, verify_attempts=1)

    assert run.rc != 0
    [message] = [m for m in run.failure_messages() if m.startswith("projects:")]
    assert message.startswith("projects: pod atlas-projects-0: /db-status does not report a connected database")


def test_no_ready_pod_at_all_fails_instead_of_checking_a_dying_one(cluster):
    for service in SERVICES:
        _pod(cluster, service, f"atlas-{service}-old", terminating=True)
        _pod(cluster, service, f"atlas-{service}-new", ready=False)

    run = _verify(cluster, verify_ready_timeout=4)

    assert run.rc != 0
    assert _exec_pods(cluster) == []
