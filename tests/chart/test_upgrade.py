"""An upgrade from the previous chart must not touch what Kubernetes forbids changing on a StatefulSet.

Renders the chart at a previous git ref (ATLAS_UPGRADE_FROM, else the last tag, else HEAD~1) and the
working tree's with the real helm, each with its own defaults, and compares every database StatefulSet's
spec outside the fields an update may change (kubernetes/kubernetes pkg/apis/apps/validation/validation.go,
ValidateStatefulSetUpdate). Such a change in the chart itself cannot be fixed by a setting, so it fails
here; the changes a setting makes are the release role's guard's (roles/release/filter_plugins).
The cluster-mode upgrade (install the previous chart, write data, upgrade) is molecule/shared/tests.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile

import pytest
import yaml

from tests.support.chart import REPO_ROOT, helm_binary

MUTABLE = {
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
}


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, check=False)


def previous_ref() -> str | None:
    wanted = os.environ.get("ATLAS_UPGRADE_FROM", "").strip()
    if wanted:
        return wanted
    tag = _git("describe", "--tags", "--abbrev=0", "HEAD~1")
    if tag.returncode == 0:
        return tag.stdout.decode().strip()
    return "HEAD~1" if _git("rev-parse", "--verify", "--quiet", "HEAD~1").returncode == 0 else None


def _render(chart_dir: str) -> list[dict]:
    proc = subprocess.run(
        [helm_binary(), "template", "atlas", chart_dir, "--namespace", "atlas"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def _fixed(spec: dict) -> dict:
    return {k: v for k, v in spec.items() if k not in MUTABLE}


@pytest.fixture(scope="module")
def before_and_after(tmp_path_factory):
    ref = previous_ref()
    if ref is None:
        pytest.skip("no previous commit to upgrade from (a one-commit clone); set ATLAS_UPGRADE_FROM")
    archive = _git("archive", "--format=tar", ref, "charts/atlas")
    if archive.returncode != 0:
        pytest.skip(f"{ref} has no charts/atlas: {archive.stderr.decode().strip()}")
    root = tmp_path_factory.mktemp("previous")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(root, filter="data")
    return ref, _render(str(root / "charts" / "atlas")), _render(os.path.join(REPO_ROOT, "charts", "atlas"))


def test_database_statefulsets_keep_their_fixed_fields(before_and_after):
    ref, before, after = before_and_after
    old = {d["metadata"]["name"]: d for d in before if d["kind"] == "StatefulSet"}
    new = {d["metadata"]["name"]: d for d in after if d["kind"] == "StatefulSet"}
    assert old.keys() == new.keys(), f"StatefulSets renamed since {ref}: {sorted(old)} -> {sorted(new)}"
    for name in sorted(old):
        assert _fixed(old[name]["spec"]) == _fixed(new[name]["spec"]), (
            f"{name}: a field Kubernetes forbids changing differs from {ref}; helm upgrade would fail"
        )


def test_the_comparison_can_fail():
    """The same comparison sees a chart change to a fixed field (a renamed governing Service)."""
    rendered = _render(os.path.join(REPO_ROOT, "charts", "atlas"))
    sts = next(d for d in rendered if d["kind"] == "StatefulSet")
    changed = {**sts["spec"], "serviceName": sts["spec"]["serviceName"] + "-headless"}
    assert _fixed(changed) != _fixed(sts["spec"])
    assert _fixed({**sts["spec"], "replicas": 3}) == _fixed(sts["spec"])  # a mutable field does not count
