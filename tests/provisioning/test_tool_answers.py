"""The roles' readers of tool answers, fed the answers the real tools give at the pinned versions.

Real: the filter and test plugins of roles/minikube, roles/images and roles/verify. Recorded: each
answer, with its source named next to it (kubernetes/minikube v1.35.0; the Kubernetes v1 Pod API).
"""

from __future__ import annotations

import importlib.util
import json

import pytest
from ansible.errors import AnsibleFilterError

from tests.provisioning.ansible_run import REPO_ROOT


def _plugin(path: str):
    spec = importlib.util.spec_from_file_location(path.replace("/", "_"), f"{REPO_ROOT}/{path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


minikube = _plugin("roles/minikube/filter_plugins/minikube_answers.py")
images = _plugin("roles/images/test_plugins/minikube_images.py")
pods = _plugin("roles/verify/filter_plugins/pods.py")


def _event(kind: str, message: str) -> str:
    # pkg/minikube/out/register/cloud_events.go (v1.35.0): one CloudEvent per stdout line.
    return json.dumps(
        {
            "specversion": "1.0",
            "id": "6b7b3a5e-1f2f-4e8e-9f1a-0c6d1d2e3f40",
            "source": "https://minikube.sigs.k8s.io/",
            "type": f"io.k8s.sigs.minikube.{kind}",
            "datacontenttype": "application/json",
            "data": {"message": message},
        }
    )


# cmd/minikube/cmd/status.go statusJSON: json.Marshal of cluster.Status (no spaces, no newline).
RUNNING = (
    '{"Name":"atlas-dev","Host":"Running","Kubelet":"Running","APIServer":"Running",'
    '"Kubeconfig":"Configured","Worker":false}'
)
STOPPED = (
    '{"Name":"atlas-dev","Host":"Stopped","Kubelet":"Stopped","APIServer":"Stopped",'
    '"Kubeconfig":"Stopped","Worker":false}'
)
# mustload.Partial + exitTip (pkg/minikube/mustload/mustload.go), exit 85.
MISSING = "\n".join(
    [
        _event("info", 'Profile "atlas-dev" not found. Run "minikube profile list" to view all profiles.'),
        _event("info", 'To start a cluster, run: "minikube start -p atlas-dev"'),
    ]
)


@pytest.mark.parametrize(
    ("stdout", "rc", "state"),
    [
        (RUNNING, 0, "running"),
        (STOPPED, 7, "stopped"),
        (MISSING, 85, "missing"),
        (_event("warning", "Executing docker took an unusually long time") + "\n" + RUNNING, 0, "running"),
        # Several nodes: a JSON list (statusJSON); a stopped worker means not running.
        ("[" + RUNNING + "," + RUNNING.replace('"Worker":false', '"Worker":true') + "]", 0, "running"),
        ("[" + RUNNING + "," + STOPPED.replace('"Worker":false', '"Worker":true') + "]", 7, "stopped"),
        # A paused cluster: the apiserver reports Paused (exit 2).
        (RUNNING.replace('"APIServer":"Running"', '"APIServer":"Paused"'), 2, "stopped"),
    ],
    ids=["running", "stopped", "missing", "warning-first", "two-nodes", "worker-stopped", "paused"],
)
def test_minikube_status_answers(stdout, rc, state):
    assert minikube.minikube_profile_state(stdout, rc, "atlas-dev")["state"] == state


def test_an_answer_that_is_none_of_these_stops_the_run_with_what_minikube_printed():
    with pytest.raises(AnsibleFilterError, match=r"(?s)exit 80\); it printed: .*GUEST_STATUS"):
        minikube.minikube_profile_state('{"specversion":"1.0"}\nX Exiting due to GUEST_STATUS', 80, "atlas-dev")


def test_missing_profile_message_for_another_profile_is_not_taken_for_this_one():
    other = _event("info", 'Profile "other" not found. Run "minikube profile list" to view all profiles.')
    with pytest.raises(AnsibleFilterError):
        minikube.minikube_profile_state(other, 1, "atlas-dev")


@pytest.mark.parametrize(
    ("ref", "listed"),
    [
        ("atlas/users:0123abcd4567", "docker.io/atlas/users:0123abcd4567"),
        ("users:1", "docker.io/library/users:1"),
        ("registry.example.com/atlas/users:1", "registry.example.com/atlas/users:1"),
        ("localhost:5000/atlas/users:1", "localhost:5000/atlas/users:1"),
    ],
)
def test_image_refs_as_minikube_image_ls_prints_them(ref, listed):
    """cruntime.AddDockerIO (pkg/minikube/cruntime/docker.go, v1.35.0)."""
    assert images.minikube_image_ref(ref) == listed
    assert images.minikube_image_present(ref, ["registry.k8s.io/pause:3.10", listed + "\n"])
    assert not images.minikube_image_present(ref, ["docker.io/other/" + listed.rsplit("/", 1)[-1]])


def _pod(name: str, created: str, ready: bool = True, phase: str = "Running", deleting: bool = False) -> dict:
    # The fields of a v1 Pod the checks read (Kubernetes API reference, Pod v1 core).
    metadata = {"name": name, "creationTimestamp": created}
    if deleting:
        metadata["deletionTimestamp"] = "2026-12-01T10:05:00Z"
    condition = {"type": "Ready", "status": "True" if ready else "False"}
    return {"metadata": metadata, "status": {"phase": phase, "conditions": [condition]}}


def test_ready_pods_skip_terminating_ones_even_while_they_still_report_ready():
    listing = [
        _pod("atlas-users-old-1", "2026-12-01T10:00:00Z", deleting=True),  # old ReplicaSet, Terminating
        _pod("atlas-users-new-1", "2026-12-01T10:04:00Z"),
        _pod("atlas-users-new-2", "2026-12-01T10:04:30Z", ready=False),
        _pod("atlas-users-done", "2026-12-01T09:00:00Z", phase="Succeeded"),
    ]
    assert pods.atlas_ready_pods(listing) == ["atlas-users-new-1"]
    assert pods.atlas_ready_pods(listing, ["atlas-users-new-1"]) == []
    assert pods.atlas_ready_pods(None) == []


def test_exec_failures_say_which_path_and_why():
    results = [
        {"path": "/readyz", "rc": 0, "stdout": '{"status":"ready"}'},
        {"path": "/db-status", "rc": 1, "stderr": "Traceback ...\nurllib.error.HTTPError: HTTP Error 503"},
        {"path": "/livez", "msg": "Failed to execute on pod p due to : (404) Reason: Not Found"},
    ]
    assert pods.atlas_exec_failures(results) == [
        "/db-status: urllib.error.HTTPError: HTTP Error 503",
        "/livez: Failed to execute on pod p due to : (404) Reason: Not Found",
    ]
