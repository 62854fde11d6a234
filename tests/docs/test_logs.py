"""docs/logs.md says what the Alloy pipeline and the chart do: its label table, structured metadata, push
URL and example lines are checked against the rendered config, the rendered chart and the line format.
(The field table against real lines: tests/services/test_log_labels.py.)"""

from __future__ import annotations

import json
import re

from tests.support import alloy_config, chart
from tests.support.alloy_log_pipeline import Pipeline, label_names
from tests.support.logs_doc import codes, section, table, text


def test_the_label_table_is_the_configs_label_set():
    assert set(table("labels")) == label_names(alloy_config.components())


def test_the_label_values_are_the_charts():
    labels = table("labels")
    assert codes(labels["namespace"][1]) == {alloy_config.project_namespace(), "atlas_namespace"}
    manifests = chart.render({"users.postgresql.backup.enabled": True, "projects.postgresql.backup.enabled": True})
    templates = [d["spec"]["template"] for d in manifests if d["kind"] in ("Deployment", "StatefulSet")]
    templates += [d["spec"]["jobTemplate"]["spec"]["template"] for d in manifests if d["kind"] == "CronJob"]
    templates += [d for d in manifests if d["kind"] == "Pod"]
    components = {t["metadata"]["labels"]["app.kubernetes.io/component"] for t in templates}
    assert codes(labels["service_name"][1]) == components
    containers = {c["name"] for t in templates for c in t["spec"].get("initContainers", []) + t["spec"]["containers"]}
    assert codes(labels["container"][1]) - {"..."} <= containers


def test_the_structured_metadata_named_is_the_configs():
    pipeline = Pipeline(alloy_config.components())
    (stage,) = [s for s in pipeline.process.blocks if s.name == "stage.structured_metadata"]
    assert codes(section("metadata")) == set(stage.attributes["values"])


def test_the_push_url_stated_is_the_one_rendered():
    stated = re.search(r"<!-- push-url -->`([^`]+)`<!-- /push-url -->", text()).group(1)
    assert stated == alloy_config.effective_push_url()
    assert f'url = "{stated}"' in alloy_config.render()


def test_the_example_lines_have_only_documented_fields():
    fields = table("fields")
    lines = [json.loads(line) for line in section("examples").splitlines() if line.startswith("{")]
    assert len(lines) >= 5
    for line in lines:
        assert set(line) <= set(fields), set(line) - set(fields)
        assert {f for f, (on, _) in fields.items() if on == "every line"} <= set(line)
    assert {line["logger"] for line in lines} >= {"atlas.access", "atlas.errors", "_granian"}
    # The cross-service request: one id on a projects line and a users line.
    assert len({line["pid"] for line in lines if line.get("request_id") == "checkout-7f3a"}) == 2
