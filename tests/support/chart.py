"""Run the real helm binary against charts/atlas: render, lint, and expect refusals.

Values are passed with ``--set-json`` so their types are exact (``{"users.replicaCount": -1}`` reaches
the schema as the integer -1). ``render`` caches by arguments, so a test session renders each
combination once however many tests look at it.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHART_DIR = os.path.join(REPO_ROOT, "charts", "atlas")
RELEASE = "atlas"
NAMESPACE = "atlas"


class HelmError(RuntimeError):
    """helm exited non-zero; ``stderr`` holds its message."""

    def __init__(self, args: list[str], stderr: str) -> None:
        super().__init__(f"{' '.join(args[:3])} ... failed:\n{stderr}")
        self.stderr = stderr


def helm_binary() -> str:
    found = shutil.which("helm") or os.path.join(REPO_ROOT, ".tools", "bin", "helm")
    if not os.access(found, os.X_OK):
        raise RuntimeError("helm not found: run scripts/install-tools.sh helm (or `make setup`)")
    return found


def _value_args(values: Mapping[str, Any] | None, values_files: Iterable[str]) -> list[str]:
    args: list[str] = []
    for path in values_files:
        args += ["--values", path]
    for key, value in (values or {}).items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


def _helm(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120, check=False)


def template_raw(
    values: Mapping[str, Any] | None = None, values_files: Iterable[str] = (), extra: Iterable[str] = ()
) -> str:
    """`helm template` output as text; raises HelmError when helm refuses."""
    args = ["template", RELEASE, CHART_DIR, "--namespace", NAMESPACE, *_value_args(values, values_files), *extra]
    proc = _helm(args)
    if proc.returncode != 0:
        raise HelmError(args, proc.stderr)
    return proc.stdout


def _api_version_args(api_versions: Iterable[str]) -> list[str]:
    return [arg for version in api_versions for arg in ("--api-versions", version)]


@functools.cache
def _render_cached(
    frozen_values: tuple[tuple[str, str], ...], values_files: tuple[str, ...], api_versions: tuple[str, ...] = ()
) -> tuple[dict, ...]:
    values = {key: json.loads(value) for key, value in frozen_values}
    text = template_raw(values, values_files, _api_version_args(api_versions))
    return tuple(doc for doc in yaml.safe_load_all(text) if doc)


def render(
    values: Mapping[str, Any] | None = None, values_files: Iterable[str] = (), api_versions: Iterable[str] = ()
) -> list[dict]:
    """The rendered manifests (hooks and `helm test` pods included), parsed; cached per arguments.

    ``api_versions`` are passed as --api-versions: what a cluster would serve beyond the built-in APIs
    (e.g. ``monitoring.coreos.com/v1`` for the Prometheus Operator's resources).
    Callers get a fresh list but shared documents: treat them as read-only.
    """
    frozen = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in (values or {}).items()))
    return list(_render_cached(frozen, tuple(values_files), tuple(api_versions)))


def render_error(values: Mapping[str, Any] | None = None, values_files: Iterable[str] = ()) -> str:
    """helm's message for values it must refuse; fails the test when helm renders them instead."""
    try:
        template_raw(values, values_files)
    except HelmError as err:
        return err.stderr
    raise AssertionError(f"helm template accepted values it should refuse: {values} {list(values_files)}")


def lint(values: Mapping[str, Any] | None = None, values_files: Iterable[str] = ()) -> subprocess.CompletedProcess:
    """`helm lint --strict` (warnings fail too)."""
    return _helm(["lint", "--strict", CHART_DIR, "--namespace", NAMESPACE, *_value_args(values, values_files)])


# -- reading the rendered documents ---------------------------------------------------------------


def resource_ids(manifests: Iterable[dict]) -> set[tuple[str, str]]:
    """{(kind, name)} of the rendered documents."""
    return {(doc["kind"], doc["metadata"]["name"]) for doc in manifests}


def find(manifests: Iterable[dict], kind: str, name: str) -> dict:
    for doc in manifests:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise KeyError(f"{kind}/{name} not rendered")


def of_kind(manifests: Iterable[dict], kind: str) -> list[dict]:
    return [doc for doc in manifests if doc["kind"] == kind]


def is_hook(doc: dict) -> bool:
    return "helm.sh/hook" in (doc["metadata"].get("annotations") or {})


def render_notes(values: Mapping[str, Any] | None = None, api_versions: Iterable[str] = ()) -> str:
    """templates/NOTES.txt as `helm install` would print it.

    helm prints NOTES only on install/upgrade, which need a cluster, so a throwaway copy of the chart
    renders the same text through `tpl` with the same values, helpers and release.
    """
    with tempfile.TemporaryDirectory() as tmp:
        chart = shutil.copytree(CHART_DIR, os.path.join(tmp, "atlas"))
        shutil.move(os.path.join(chart, "templates", "NOTES.txt"), os.path.join(chart, "files", "NOTES.txt"))
        with open(os.path.join(chart, "templates", "zz-notes.yaml"), "w") as f:
            f.write('notes: {{ tpl (.Files.Get "files/NOTES.txt") . | toJson }}\n')
        args = ["template", RELEASE, chart, "--namespace", NAMESPACE, "--show-only", "templates/zz-notes.yaml"]
        proc = _helm([*args, *_value_args(values, ()), *_api_version_args(api_versions)])
        if proc.returncode != 0:
            raise HelmError(args, proc.stderr)
        return yaml.safe_load(proc.stdout)["notes"]
