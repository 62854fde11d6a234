"""The chart's settings are generated from the services' declarations (scripts/chart-settings.py) and the
committed files are what the generator makes today: a changed declaration or a hand edit fails here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.support.chart import CHART_DIR, REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, "scripts", "chart-settings.py")
INTERFACES = os.path.join(REPO_ROOT, "docs", "interfaces.md")


def check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, SCRIPT, "--check", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_generated_files_are_up_to_date() -> None:
    proc = check()
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _copy(tmp_path) -> tuple[str, str]:
    chart = shutil.copytree(CHART_DIR, tmp_path / "atlas")
    interfaces = shutil.copy(INTERFACES, tmp_path / "interfaces.md")
    return str(chart), str(interfaces)


def _edit(path: str, old: str, new: str) -> None:
    with open(path) as f:
        text = f.read()
    assert old in text, f"{old!r} not in {path}"
    with open(path, "w") as f:
        f.write(text.replace(old, new, 1))


@pytest.mark.parametrize(
    ("target", "old", "new"),
    [
        ("values.yaml", "    workers: 2\n", "    workers: 3\n"),  # a default edited by hand
        ("values.yaml", "## @param users.config.threads ATLAS_THREADS", "## @param users.config.threads threads"),
        ("values.schema.json", '"maximum": 32', '"maximum": 64'),  # the drift issue 11 found
        ("templates/_settings.tpl", "| int64 | quote", "| quote"),
        ("interfaces.md", "| `config.workers` | `2` |", "| `config.workers` | `3` |"),
    ],
)
def test_a_hand_edit_of_a_generated_file_is_caught(tmp_path, target: str, old: str, new: str) -> None:
    chart, interfaces = _copy(tmp_path)
    path = interfaces if target == "interfaces.md" else os.path.join(chart, target)
    _edit(path, old, new)
    proc = check("--chart-dir", chart, "--interfaces", interfaces)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "run make chart-docs" in proc.stderr
    # The diff goes from the file as it is to what the generator makes: the generated text comes back.
    added = [line for line in proc.stdout.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert any(old.strip() in line for line in added), proc.stdout


def test_the_generator_rewrites_what_it_owns_and_nothing_else(tmp_path) -> None:
    chart, interfaces = _copy(tmp_path)
    _edit(os.path.join(chart, "values.yaml"), "    workers: 2\n", "    workers: 3\n")
    _edit(os.path.join(chart, "values.yaml"), "host: atlas.local", "host: kept.local")  # outside the regions
    proc = subprocess.run(
        [sys.executable, SCRIPT, "--chart-dir", chart, "--interfaces", interfaces],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    with open(os.path.join(chart, "values.yaml")) as f:
        text = f.read()
    assert "    workers: 3\n" not in text and "host: kept.local" in text
    assert check("--chart-dir", chart, "--interfaces", interfaces).returncode == 0


def test_a_service_without_its_generated_region_is_named(tmp_path) -> None:
    chart, interfaces = _copy(tmp_path)
    _edit(os.path.join(chart, "values.yaml"), "## --- BEGIN GENERATED settings of projects", "## projects")
    proc = check("--chart-dir", chart, "--interfaces", interfaces)
    assert proc.returncode != 0
    assert "values.yaml has no generated region for projects" in proc.stderr


def test_schema_definitions_come_from_the_declarations() -> None:
    """Spot check of what the generator wrote: the bounds issue 11 found drifting are the services' now."""
    with open(os.path.join(CHART_DIR, "values.schema.json")) as f:
        definitions = json.load(f)["definitions"]
    config, users_service = definitions["config"]["properties"], definitions["usersService"]["properties"]
    assert (config["dbConnectTimeout"]["minimum"], config["dbConnectTimeout"]["maximum"]) == (1, 60)
    assert config["dbStatementTimeoutMs"]["maximum"] == 3_600_000
    assert config["maxBodyBytes"]["maximum"] == 64 * 1024 * 1024
    assert (users_service["timeout"]["minimum"], users_service["timeout"]["maximum"]) == (0.05, 60)
    assert config["poolSize"]["type"] == ["integer", "null"] and "poolSize" not in definitions["config"]["required"]
    assert definitions["config"]["additionalProperties"] is False
    assert definitions["usersService"]["additionalProperties"] is False
