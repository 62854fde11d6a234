"""Every pod the chart can render runs as non-root with a read-only root filesystem.

The chart is rendered with the real helm binary (tests/support/chart.py) for every combination of the
toggle matrix (tests/chart/matrix.py) and every values file the chart tests use (tests/chart/values/),
hooks and `helm test` pods included. Every container - init containers too - is checked with Kubernetes'
own precedence: a container's securityContext overrides the pod's for runAsNonRoot and runAsUser;
readOnlyRootFilesystem exists only per container.
"""

from __future__ import annotations

import copy
import glob
import os

import pytest

from tests.chart.matrix import COMBOS
from tests.support.chart import REPO_ROOT, render

VALUES_FILES = sorted(glob.glob(os.path.join(REPO_ROOT, "tests", "chart", "values", "*.yaml")))

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


def _assert_safe(manifests: list[dict]) -> None:
    # Not vacuous: the rendering must hold containers for the check to mean anything.
    assert any(True for _, spec in pod_specs(manifests) for _ in containers(spec)), "no container rendered"
    assert pod_security_violations(manifests) == []


# Both services off renders no workload at all; the matrix's other combinations each run some.
@pytest.mark.parametrize("combo", [c for c in COMBOS if c.enabled], ids=lambda c: c.id)
def test_every_container_of_every_toggle_combination(combo) -> None:
    _assert_safe(render(combo.values()))


@pytest.mark.parametrize("values_file", VALUES_FILES, ids=os.path.basename)
def test_every_container_of_every_values_file(values_file: str) -> None:
    _assert_safe(render(values_files=[values_file]))


def test_the_values_files_are_found() -> None:
    assert len(VALUES_FILES) >= 3, VALUES_FILES


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


def test_the_backup_cronjob_pods_are_among_those_checked() -> None:
    """tests/chart/values/backups.yaml renders the backup CronJobs; their pods go through the same check."""
    manifests = render(values_files=[os.path.join(REPO_ROOT, "tests", "chart", "values", "backups.yaml")])
    checked = {where: spec for where, spec in pod_specs(manifests)}
    for name in ("users", "projects"):
        spec = checked[f"CronJob/atlas-{name}-postgresql-backup"]
        assert [c["name"] for _, c in containers(spec)] == ["backup"]
    assert pod_security_violations(manifests) == []
    # The check reads the CronJob's pod template: a writable root there is flagged.
    cronjob = next(d for d in manifests if d["kind"] == "CronJob")
    pod = copy.deepcopy(cronjob)
    pod["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["securityContext"] = {}
    (problem,) = pod_security_violations([pod])
    assert "CronJob/atlas-" in problem and "container backup: readOnlyRootFilesystem" in problem, problem
