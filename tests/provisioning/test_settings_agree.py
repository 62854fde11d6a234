"""The playbooks refuse exactly what the chart refuses, before any cluster call, naming the key the user wrote.

Real: the settings role's filter plugin (what the role runs on every playbook), the chart's own
values.schema.json and templates (the real helm, `helm template`), and the services' declarations of their
settings (tests/contract/declared.py reads them). One step past each numeric bound, and each rule across
keys, must be refused by both, and each bound itself accepted by both. (tests/contract/test_settings_*
prove the same bounds against the running containers; test_bad_input.py runs the whole playbook.)
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import yaml

from tests.contract.declared import numeric_settings
from tests.provisioning.ansible_run import REPO_ROOT
from tests.support.chart import CHART_DIR, render, render_error

_spec = importlib.util.spec_from_file_location(
    "chart_values", f"{REPO_ROOT}/roles/settings/filter_plugins/chart_values.py"
)
plugin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plugin)

with open(f"{CHART_DIR}/values.schema.json") as fh:
    SCHEMA = json.load(fh)
with open(f"{CHART_DIR}/values.yaml") as fh:
    CHART_DEFAULTS = yaml.safe_load(fh)


def _problems(overrides: dict) -> list[str]:
    """What the settings role says of `-e atlas_service_overrides=<overrides>` on the dev inventory."""
    return plugin.chart_values(
        {
            "service_defaults": {},
            "services": {"users": {}, "projects": {}},
            "env_service_defaults": {},
            "service_overrides": overrides,
            "enabled": ["users", "projects"],
            "persistence": True,
            "profile": "full",
            "registry": "",
            "secret_name": "atlas-<service>-db",
            "top": {},
            "schema": SCHEMA,
            "chart_defaults": CHART_DEFAULTS,
        }
    )["problems"]


def _nested(key: str, value) -> dict:
    """'users.config.poolSize', 8 -> {'users': {'config': {'poolSize': 8}}}"""
    out: dict = value
    for part in reversed(key.split(".")):
        out = {part: out}
    return out


def _helm_values(key: str, value) -> dict:
    # Keep the cross-key rules out of a single bound's way: the pool follows the threads unless set.
    extra = {}
    if key.endswith(".config.poolSize"):
        extra[key.replace("poolSize", "threads")] = 1
    if key.endswith(".config.gracefulTimeout"):
        extra[key.replace("config.gracefulTimeout", "terminationGracePeriodSeconds")] = int(value) + 3600
    return {key: value, **extra}


def _overrides(values: dict) -> dict:
    merged: dict = {}
    for key, value in values.items():
        merged = plugin._deep_merged(merged, _nested(key, value))
    return merged


SETTINGS = numeric_settings()


def test_the_declarations_have_numeric_settings():
    assert len(SETTINGS) >= 10, [s.key for s in SETTINGS]


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.id)
def test_each_bound_is_accepted_and_one_step_past_it_refused_by_both(setting):
    low, high = setting.bounds
    layer_key = f"atlas_service_overrides.{setting.key}"
    for value in (low, high):
        values = _helm_values(setting.key, value)
        assert not _problems(_overrides(values)), (setting.key, value)
        assert render(values)  # the chart takes it too
    past = [low - setting.step] + ([high + setting.step] if setting.declared.maximum is not None else [])
    for value in past:
        values = _helm_values(setting.key, value)
        problems = _problems(_overrides(values))
        assert any(p.startswith(f"{layer_key}: ") for p in problems), (value, problems)
        assert setting.key in render_error(values)


CROSS_KEY_CASES = {
    "pool below the threads": {"users.config.threads": 8, "users.config.poolSize": 4},
    "autoscaling min above max": {
        "projects.autoscaling.enabled": True,
        "projects.autoscaling.minReplicas": 6,
        "projects.autoscaling.maxReplicas": 3,
    },
    "grace period shorter than the drain": {"users.terminationGracePeriodSeconds": 10},
    "external database without host": {"projects.postgresql.enabled": False},
}


@pytest.mark.parametrize("case", sorted(CROSS_KEY_CASES))
def test_rules_across_keys_are_refused_by_both(case):
    values = CROSS_KEY_CASES[case]
    problems = _problems(_overrides(values))
    assert problems, f"{case}: the playbooks accept what the chart refuses"
    service = next(iter(values)).split(".")[0]
    assert all(p.startswith(f"atlas_service_overrides.{service}.") for p in problems), problems
    render_error({**values, "projects.externalDatabase.existingSecret": "db"} if "external" in case else values)
