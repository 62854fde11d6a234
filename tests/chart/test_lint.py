"""`helm lint --strict` is clean for the default values and every test values file."""

from __future__ import annotations

import glob
import os

import pytest

from tests.support.chart import lint

VALUES_DIR = os.path.join(os.path.dirname(__file__), "values")
VALUES_FILES = sorted(glob.glob(os.path.join(VALUES_DIR, "*.yaml")))


def test_values_files_exist() -> None:
    # Guards the parametrisation below against passing vacuously on an empty glob.
    assert len(VALUES_FILES) >= 5


@pytest.mark.parametrize("values_file", [None, *VALUES_FILES], ids=lambda p: os.path.basename(p) if p else "defaults")
def test_helm_lint_strict(values_file: str | None) -> None:
    proc = lint(values_files=[values_file] if values_file else [])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


def test_lint_fails_on_bad_values() -> None:
    """The lint above can fail: it applies the schema."""
    proc = lint({"users.replicas": 2})
    assert proc.returncode != 0
    assert "Additional property replicas is not allowed" in proc.stdout + proc.stderr
