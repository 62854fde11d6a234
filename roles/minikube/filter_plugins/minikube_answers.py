"""Read what `minikube status -o json` answers, as minikube v1.35.0 really prints it.

What minikube v1.35.0 writes (kubernetes/minikube, tag v1.35.0):
- cmd/minikube/cmd/status.go: `-o json` switches out.SetJSON(true); a known profile prints one status
  object (json.Marshal of cluster.Status, no trailing newline) or, with several nodes, a list of them;
  the exit code is a bit set: 1 host, 2 kubelet/apiserver, 4 kubeconfig not running (stopped = 7).
- pkg/minikube/cluster/status.go: the fields Name, Host, Kubelet, APIServer, Kubeconfig, Worker; a
  stopped host copies its state into the other fields.
- pkg/minikube/mustload/mustload.go (Partial, exitTip): an unknown profile prints two messages and
  exits 85 (reason.ExGuestNotFound, pkg/minikube/reason/exitcodes.go).
- pkg/minikube/out/out.go and out/register/cloud_events.go: in JSON mode every message, warnings
  included, is a CloudEvent on its own stdout line, `"type": "io.k8s.sigs.minikube.<kind>"` with
  `data.message`, printed before the status object.
"""

from __future__ import annotations

import json

from ansible.errors import AnsibleFilterError

# pkg/minikube/reason/exitcodes.go, v1.35.0
EX_GUEST_NOT_FOUND = 85
_EVENT_PREFIX = "io.k8s.sigs.minikube."


def _is_status(value) -> bool:
    return isinstance(value, dict) and "Host" in value and "APIServer" in value


def _node_runs(node: dict) -> bool:
    # A worker's APIServer is "Irrelevant" (cluster/status.go); the control plane's must be Running.
    api_ok = node.get("APIServer") in ("Running", "Irrelevant")
    return node.get("Host") == "Running" and node.get("Kubelet") == "Running" and api_ok


def minikube_profile_state(stdout: str, rc: int, profile: str) -> dict:
    """{'state': running | stopped | missing, 'nodes': [...], 'messages': [...]} from one status call.

    Raises AnsibleFilterError with the whole answer when it is none of these, so a new minikube
    output format stops the run with what it printed instead of being taken for "not running".
    """
    messages: list[str] = []
    nodes: list[dict] | None = None
    for line in (stdout or "").splitlines():
        line = line.strip()
        if not line.startswith(("{", "[")):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict) and str(value.get("type", "")).startswith(_EVENT_PREFIX):
            messages.append(str((value.get("data") or {}).get("message", "")))
        elif _is_status(value):
            nodes = [value]
        elif isinstance(value, list) and value and all(_is_status(v) for v in value):
            nodes = value
    if nodes is not None:
        state = "running" if all(_node_runs(n) for n in nodes) else "stopped"
        return {"state": state, "nodes": nodes, "messages": messages}
    not_found = f'Profile "{profile}" not found'
    if rc == EX_GUEST_NOT_FOUND or any(m.startswith(not_found) for m in messages):
        return {"state": "missing", "nodes": [], "messages": messages}
    raise AnsibleFilterError(
        f"minikube status -p {profile} -o json gave no status and no 'profile not found' (exit {rc}); it printed: "
        + ((stdout or "").strip()[-2000:] or "nothing")
    )


class FilterModule:
    def filters(self):
        return {"minikube_profile_state": minikube_profile_state}
