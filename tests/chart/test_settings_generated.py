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


def test_a_block_without_a_chart_key_has_no_chart_block_but_its_variables_are_documented() -> None:
    """A block whose settings the chart wires itself (env_only, like AuthSettings) gets no definition, no values
    block, no ConfigMap lines and no `required` entry; its variables are still in the table and the comments."""
    from atlas_common.config import BaseUrl, SettingsBlock, setting

    from tests.contract.declared import generator

    gen = generator()

    class Wired(SettingsBlock):
        chart_block = "wired"
        url: BaseUrl = setting(None, env="WIRED_URL", env_only="the chart wires it", doc="where the other one is")

    class Own(SettingsBlock):
        chart_block = "own"
        n: int = setting(1, env="OWN_N", chart="n", doc="how many", ge=1, le=9)

    found = [gen.Service("alpha", (Wired, Own)), gen.Service("beta", (Wired,))]
    empty = {"definitions": {"atlasService": {"properties": {}, "required": []}}, "properties": {}}
    schema = json.loads(gen.schema_text(json.dumps(empty), found))
    assert set(schema["definitions"]) == {"atlasService", "own"}
    assert schema["definitions"]["atlasService"]["properties"] == {"own": {"$ref": "#/definitions/own"}}
    assert schema["properties"]["alpha"]["required"] == ["own"]
    assert schema["properties"]["beta"]["required"] == []
    assert schema["properties"]["beta"]["properties"] == {"own": False}  # another's block refused, none for wired

    alpha = gen.values_region(found[0], "  ")
    assert "## Not a chart value: WIRED_URL (the chart wires it)" in alpha
    assert "wired:" not in alpha and "  own:\n    n: 1\n" in alpha
    beta = gen.values_region(found[1], "  ")
    assert "WIRED_URL" in beta and ":\n" not in beta.split("## Not a chart value")[1].split("## --- END")[0]

    template = gen.template_text(found)
    assert "wired" not in template and "OWN_N: {{ $v.n | int64 | quote }}" in template

    table = gen.docs_table(found)
    assert "| `WIRED_URL` | none: the chart wires it | unset | any string | where the other one is |" in table
    assert "| `OWN_N` (alpha only) | `own.n` | `1` | 1 to 9 | how many |" in table


def test_the_shared_auth_block_is_documented_not_charted() -> None:
    """The real declarations: ATLAS_AUTH_* are read by every service and wired by the chart, so no service has
    an `authentication` block in its values, and the table lists them once for all services."""
    from atlas_common.config import AuthSettings

    from tests.contract.declared import generator

    gen = generator()
    found = gen.services()
    assert {s.name for s in found} >= {"users", "projects", "auth"}
    assert all(AuthSettings in s.blocks for s in found)
    assert "authentication" not in gen.template_text(found)
    table = gen.docs_table(found)
    for variable in ("ATLAS_AUTH_ISSUER", "ATLAS_AUTH_AUDIENCE", "ATLAS_AUTH_JWKS_URL"):
        assert f"| `{variable}` | none: " in table  # no "(... only)": every service reads it
    assert "| `ATLAS_AUTH_TOKEN_LIFETIME` (auth only) | `tokens.lifetime` | `900` | 60 to 86400 |" in table
    assert "| `ATLAS_AUTH_SIGNING_KEY_FILE` (auth only) | none: " in table
