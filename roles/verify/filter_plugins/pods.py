"""Which pods of a service the checks may use: Ready, Running and not on their way out.

After a rolling upgrade the old ReplicaSet's pods are Terminating (metadata.deletionTimestamp set) but
still in phase Running, and may still report Ready until their containers stop; a check inside one of
them can fail half-way when the pod goes. (Pod fields: Kubernetes API v1 Pod, metadata.deletionTimestamp,
status.phase, status.conditions[type=Ready].)
"""

from __future__ import annotations


def _ready(pod: dict) -> bool:
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
    )


def atlas_ready_pods(pods: list[dict], exclude: list[str] | None = None) -> list[str]:
    """Names of the Ready, Running pods without a deletionTimestamp, newest first, minus ``exclude``."""
    skip = set(exclude or [])
    usable = [
        p
        for p in pods or []
        if _ready(p) and not (p.get("metadata") or {}).get("deletionTimestamp") and p["metadata"]["name"] not in skip
    ]
    usable.sort(key=lambda p: (p["metadata"].get("creationTimestamp") or "", p["metadata"]["name"]), reverse=True)
    return [p["metadata"]["name"] for p in usable]


def atlas_exec_failures(results: list[dict]) -> list[str]:
    """'<path>: <why>' for each k8s_exec result (looped over `path`) that did not exit 0."""
    failures = []
    for r in results or []:
        if r.get("rc") == 0:
            continue
        why = (r.get("stderr") or "").strip().splitlines()[-1:] or [r.get("msg") or f"exit {r.get('rc')}"]
        failures.append(f"{r.get('path')}: {why[0]}")
    return failures


class FilterModule:
    def filters(self):
        return {"atlas_ready_pods": atlas_ready_pods, "atlas_exec_failures": atlas_exec_failures}
