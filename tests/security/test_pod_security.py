"""Every pod the chart can render runs as non-root with a read-only root filesystem.

The chart is rendered with the real helm binary for each deployment shape (both services, one of them,
no persistence, external databases), hooks and `helm test` pods included, and every container - init
containers too - is checked with Kubernetes' own precedence: a container's securityContext overrides
the pod's for runAsNonRoot and runAsUser; readOnlyRootFilesystem exists only per container.
"""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

# Where each workload kind keeps its pod spec.
POD_SPEC_PATHS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")

EXTERNAL_DB = [
    f"{svc}.{key}"
    for svc in ("users", "projects")
    for key in (
        "postgresql.enabled=false",
        "externalDatabase.host=db.example.test",
        "externalDatabase.existingSecret=db",
    )
]
# name -> helm --set values (defaults: both services, each with its persistent PostgreSQL).
SHAPES = {
    "defaults": [],
    "users-only": ["projects.enabled=false"],
    "projects-only": ["users.enabled=false"],
    "ephemeral": ["users.postgresql.persistence.enabled=false", "projects.postgresql.persistence.enabled=false"],
    "external-databases": EXTERNAL_DB,
    "scaling": [
        f"{svc}.{k}.enabled=true" for svc in ("users", "projects") for k in ("autoscaling", "podDisruptionBudget")
    ],
}


def pod_specs(manifests: list[dict]):
    """(``Kind/name``, pod spec) for every workload among the rendered documents."""
    for doc in manifests:
        path = POD_SPEC_PATHS.get(doc.get("kind", ""))
        if path is None:
            continue
        spec = doc
        for key in path:
            spec = (spec or {}).get(key) or {}
        yield f"{doc['kind']}/{doc.get('metadata', {}).get('name', '?')}", spec


def containers(spec: dict):
    for list_name in CONTAINER_LISTS:
        for container in spec.get(list_name) or []:
            yield f"{list_name[:-1]} {container.get('name', '?')}", container


def pod_security_violations(manifests: list[dict]) -> list[str]:
    """One line per container that could run as root or write to its root filesystem."""
    problems = []
    for where, spec in pod_specs(manifests):
        pod_ctx = spec.get("securityContext") or {}
        for name, container in containers(spec):
            ctx = container.get("securityContext") or {}
            label = f"{where} {name}"
            non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
            if non_root is not True:
                problems.append(f"{label}: runAsNonRoot is {non_root!r}, not true")
            if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
                problems.append(f"{label}: runAsUser is 0 (root)")
            if ctx.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{label}: readOnlyRootFilesystem is {ctx.get('readOnlyRootFilesystem')!r}, not true")
    return problems


def render(repo_root: str, values: list[str]) -> list[dict]:
    cmd = ["helm", "template", "atlas", os.path.join(repo_root, "charts", "atlas")]
    for value in values:
        cmd += ["--set", value]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"helm template failed for {values}:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_rendered_container_is_non_root_with_read_only_root_filesystem(repo_root: str, shape: str) -> None:
    manifests = render(repo_root, SHAPES[shape])
    # Guard against passing vacuously: each shape runs at least one service container.
    assert any(True for _, spec in pod_specs(manifests) for _ in containers(spec)), f"{shape}: no container rendered"
    assert pod_security_violations(manifests) == []


def _deployment(pod_ctx: dict, container_ctx: dict, init_ctx: dict | None = None) -> dict:
    spec = {"securityContext": pod_ctx, "containers": [{"name": "app", "securityContext": container_ctx}]}
    if init_ctx is not None:
        spec["initContainers"] = [{"name": "migrate", "securityContext": init_ctx}]
    return {"kind": "Deployment", "metadata": {"name": "x"}, "spec": {"template": {"spec": spec}}}


SAFE = {"runAsNonRoot": True, "runAsUser": 10001, "readOnlyRootFilesystem": True}


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (_deployment({}, SAFE), []),
        (_deployment({"runAsNonRoot": True}, {"readOnlyRootFilesystem": True}), []),
        (_deployment({}, {**SAFE, "runAsNonRoot": None}), ["runAsNonRoot is None"]),
        (_deployment({"runAsNonRoot": True}, {**SAFE, "runAsNonRoot": False}), ["runAsNonRoot is False"]),
        (_deployment({"runAsUser": 0, "runAsNonRoot": True}, {"readOnlyRootFilesystem": True}), ["runAsUser is 0"]),
        (_deployment({}, {**SAFE, "readOnlyRootFilesystem": False}), ["readOnlyRootFilesystem is False"]),
        (_deployment({}, SAFE, init_ctx={"runAsNonRoot": True}), ["initContainer migrate: readOnlyRootFilesystem"]),
    ],
    ids=["safe", "pod-level-non-root", "unset", "container-overrides-pod", "uid-0", "writable-root", "init-container"],
)
def test_the_check_flags_each_unsafe_setting(doc: dict, expected: list[str]) -> None:
    problems = pod_security_violations([doc])
    assert len(problems) == len(expected)
    for problem, fragment in zip(problems, expected, strict=True):
        assert fragment in problem
