"""The rendered Grafana dashboards (metrics.dashboards): which ConfigMaps, their sidecar label, and the
dashboard JSON Grafana reads (schema of grafana/grafana's dashboard model: uid at most 40 characters,
templating.list, panels with gridPos and targets). That their queries return data is
tests/contract/test_monitoring_live.py's part."""

from __future__ import annotations

import json
import os

from tests.support.chart import REPO_ROOT, of_kind, render

VALUES = os.path.join(REPO_ROOT, "tests", "chart", "values", "monitoring.yaml")


def dashboards(values: dict | None = None, files=(VALUES,)) -> dict[str, dict]:
    """ConfigMap name -> its one dashboard, for the ConfigMaps the sidecar would load."""
    found = {}
    for config_map in of_kind(render(values, list(files)), "ConfigMap"):
        if "grafana_dashboard" in config_map["metadata"]["labels"]:
            (key, text) = next(iter(config_map["data"].items()))
            assert key == f"{config_map['metadata']['name']}.json"
            found[config_map["metadata"]["name"]] = json.loads(text)
    return found


def variables(dashboard: dict) -> dict[str, dict]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def test_off_by_default():
    assert dashboards(files=()) == {}


def test_one_per_service_and_one_for_the_databases():
    found = dashboards()
    assert sorted(found) == ["atlas-databases-dashboard", "atlas-projects-dashboard", "atlas-users-dashboard"]
    assert variables(found["atlas-users-dashboard"])["job"]["query"] == "atlas-users"
    assert variables(found["atlas-databases-dashboard"])["job"]["query"] == (
        "atlas-projects-postgresql,atlas-users-postgresql"  # services in name order (atlas.services)
    )
    only = dashboards({"users.enabled": False, "projects.postgresql.metrics.enabled": False})
    assert sorted(only) == ["atlas-projects-dashboard"], "no database dashboard without an exporter"


def test_every_panel_reads_the_datasource_variable_and_selects_namespace_and_job():
    for name, dashboard in dashboards().items():
        assert variables(dashboard)["datasource"]["type"] == "datasource"
        assert variables(dashboard)["namespace"]["query"] == "atlas"
        assert 0 < len(dashboard["uid"]) <= 40 and dashboard["uid"].startswith("atlas-atlas-"), dashboard["uid"]
        ids = [p["id"] for p in dashboard["panels"]]
        assert len(ids) == len(set(ids)) >= 7, name
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == "${datasource}"
            assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "${datasource}"
                assert 'namespace="$namespace"' in target["expr"] and "$job" in target["expr"], target["expr"]


def test_the_service_dashboard_has_the_panels_the_issue_asks_for():
    panels = {p["title"]: p for p in dashboards()["atlas-users-dashboard"]["panels"]}
    assert {
        "Requests per second by status",
        "Error ratio",
        "Latency quantiles",
        "Database pool per pod: in use vs size",
    } <= set(panels)
    quantiles = [t["expr"] for t in panels["Latency quantiles"]["targets"]]
    assert [q.split(",")[0] for q in quantiles] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.9",
        "histogram_quantile(0.99",
    ]
    pool = " ".join(t["expr"] for t in panels["Database pool per pod: in use vs size"]["targets"])
    assert 'state="in_use"' in pool and "atlas_db_pool_size" in pool


def test_labels_annotations_namespace_and_the_endpoint_label():
    found = render(
        {"metrics.dashboards.namespace": "monitoring", "metrics.dashboards.labels": {"team": "atlas"},
         "metrics.dashboards.sidecarLabel": "grafana_dashboard_atlas", "metrics.serviceMonitor.honorLabels": True},
        [VALUES],
    )  # fmt: skip
    (users,) = [c for c in of_kind(found, "ConfigMap") if c["metadata"]["name"] == "atlas-users-dashboard"]
    meta = users["metadata"]
    assert meta["namespace"] == "monitoring" and meta["annotations"] == {"grafana_folder": "Atlas"}
    assert meta["labels"]["team"] == "atlas" and meta["labels"]["grafana_dashboard_atlas"] == "1"
    text = next(iter(users["data"].values()))
    assert "exported_endpoint" not in text and "(le, method, endpoint)" in text
    assert "exported_endpoint" in next(iter(dashboards()["atlas-users-dashboard"]["panels"][3]["targets"]))["expr"]
