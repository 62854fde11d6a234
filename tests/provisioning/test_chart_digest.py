"""A template-only chart change is deployed: the values role writes the chart's content digest into the
values file, and kubernetes.core.helm's own change check (6.2.0, without the helm-diff plugin) then sees it.

Real: playbooks/render.yml with the values role, and kubernetes.core.helm's `default_check` — the function
the module calls to decide whether to upgrade when helm-diff is missing (plugins/modules/helm.py) — given
the release status the way the module builds it (`helm list` + `helm get values`). Stand-in: that release
status is taken from our own first render instead of from a cluster; only `make molecule-cluster` runs
the upgrade itself.
"""

from __future__ import annotations

import shutil

import pytest
import yaml
from ansible_collections.kubernetes.core.plugins.modules.helm import default_check

from tests.provisioning.ansible_run import REPO_ROOT, run_playbook

RENDER = "playbooks/render.yml"


@pytest.fixture
def chart_copy(tmp_path):
    copy = tmp_path / "charts" / "atlas"
    shutil.copytree(f"{REPO_ROOT}/charts/atlas", copy)
    return copy


def _render(tmp_path, chart) -> tuple[int, dict, str]:
    extra = {
        "atlas_build_dir": str(tmp_path / "build"),
        "atlas_chart_path": str(chart),
        # Fixed tags: only the chart may change between these renders, not services/.
        "atlas_service_overrides": {s: {"image": {"tag": "fixed"}} for s in ("users", "projects")},
    }
    run = run_playbook(RENDER, "dev", extra)
    assert run.rc == 0, run.failure_messages()
    values_file = str(tmp_path / "build" / "values.yaml")
    with open(values_file) as fh:
        return run.changed(), yaml.safe_load(fh), values_file


def _release_status(chart, values: dict) -> dict:
    """What kubernetes.core.helm's get_release_status returns for the installed release."""
    with open(chart / "Chart.yaml") as fh:
        meta = yaml.safe_load(fh)
    return {"chart": f"{meta['name']}-{meta['version']}", "app_version": meta["appVersion"], "values": values}


def _chart_info(chart) -> dict:
    with open(chart / "Chart.yaml") as fh:
        return yaml.safe_load(fh)


def test_a_template_only_change_makes_the_module_upgrade(tmp_path, chart_copy):
    _, installed, _ = _render(tmp_path, chart_copy)
    assert len(installed["chartDigest"]) == 64

    # Nothing changed: the module sees the same values and leaves the release alone.
    changed, again, values_file = _render(tmp_path, chart_copy)
    assert changed == 0 and again == installed
    assert (
        default_check(_release_status(chart_copy, installed), _chart_info(chart_copy), values_files=[values_file])
        is False
    )

    # A template edited, Chart.yaml untouched: the digest moves, and so does the module's decision.
    template = chart_copy / "templates" / "service-service.yaml"
    template.write_text(template.read_text().replace("protocol: TCP", "protocol: TCP\n      appProtocol: http"))
    changed, edited, values_file = _render(tmp_path, chart_copy)
    assert changed > 0 and edited["chartDigest"] != installed["chartDigest"]
    assert (
        default_check(_release_status(chart_copy, installed), _chart_info(chart_copy), values_files=[values_file])
        is True
    )

    # Without the digest the same edit would have looked like no change at all (the bug this fixes).
    without = {k: v for k, v in edited.items() if k != "chartDigest"}
    status = _release_status(chart_copy, {k: v for k, v in installed.items() if k != "chartDigest"})
    stripped = tmp_path / "stripped.yaml"
    stripped.write_text(yaml.safe_dump(without))
    assert default_check(status, _chart_info(chart_copy), values_files=[str(stripped)]) is False


def test_the_digest_is_a_value_the_chart_accepts_and_ignores(tmp_path, chart_copy):
    """The schema allows the key; no template reads it, so a new digest alone restarts no pod."""
    _, values, _ = _render(tmp_path, chart_copy)
    assert values["chartDigest"]
    templates = "".join(p.read_text() for p in (chart_copy / "templates").rglob("*") if p.is_file())
    assert "chartDigest" not in templates
