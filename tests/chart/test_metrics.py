"""Metrics (issue 13): ServiceMonitors, the databases' postgres_exporter sidecars and who may scrape them.

Rendered with the real helm (tests/support/chart.py); ``--api-versions monitoring.coreos.com/v1`` stands in
for a cluster with the Prometheus Operator's CRDs, as `helm install` would find them by discovery.

What the Prometheus Operator does with a ServiceMonitor, as these tests assume it (prometheus-operator
v0.93.0, pkg/prometheus/promcfg.go, generateServiceMonitorConfig): it keeps the endpoints of the Services whose
labels match spec.selector in spec.namespaceSelector's namespaces, only those of the Service port named
endpoints[].port, and sets the target labels job (the Service's name, no jobLabel set), service, pod,
namespace, container, endpoint. Its Prometheus pods carry app.kubernetes.io/name: prometheus
(pkg/prometheus/server/operator.go, applicationNameLabelValue). ServiceMonitor field names: ServiceMonitorSpec
in pkg/apis/monitoring/v1/servicemonitor_types.go and Endpoint in pkg/apis/monitoring/v1/types.go, same tag.
"""

from __future__ import annotations

import copy
import importlib.util
import itertools
import os
import re

import pytest
import yaml

from tests.support.chart import REPO_ROOT, find, lint, of_kind, render, render_error, render_notes

MONITORING = "monitoring.coreos.com/v1"
API = [MONITORING]
NAMESPACE = "atlas"
ON = {
    "metrics.serviceMonitor.enabled": True,
    "users.postgresql.metrics.enabled": True,
    "projects.postgresql.metrics.enabled": True,
}
VALUES_FILE = os.path.join(REPO_ROOT, "tests", "chart", "values", "metrics.yaml")

# Field names of the operator's types at v0.93.0 (see the module docstring), as far as the chart uses them.
SERVICEMONITOR_SPEC_FIELDS = {
    "jobLabel", "targetLabels", "podTargetLabels", "endpoints", "selector", "selectorMechanism",
    "namespaceSelector", "sampleLimit", "scrapeProtocols", "targetLimit", "labelLimit", "attachMetadata",
    "scrapeClass", "bodySizeLimit", "serviceDiscoveryRole",
}  # fmt: skip
ENDPOINT_FIELDS = {
    "port", "targetPort", "path", "scheme", "params", "interval", "scrapeTimeout", "honorLabels",
    "honorTimestamps", "relabelings", "metricRelabelings", "filterRunning", "tlsConfig", "authorization",
}  # fmt: skip


def monitors(manifests: list[dict]) -> dict[str, dict]:
    return {doc["metadata"]["name"]: doc for doc in of_kind(manifests, "ServiceMonitor")}


def matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def workloads(manifests: list[dict]):
    """(pod labels, pod spec) of every Deployment and StatefulSet."""
    for doc in manifests:
        if doc["kind"] in ("Deployment", "StatefulSet"):
            template = doc["spec"]["template"]
            yield template["metadata"]["labels"], template["spec"]


def scrape_targets(manifests: list[dict], monitor: dict) -> list[str]:
    """What the operator would scrape for a ServiceMonitor: "<Service>/<port name> -> <container>:<port>", or a
    problem line when the monitor's Service, port or the pods' container port is not there."""
    spec = monitor["spec"]
    namespaces = spec.get("namespaceSelector", {}).get("matchNames") or [monitor["metadata"]["namespace"]]
    services = [
        s
        for s in of_kind(manifests, "Service")
        if s["metadata"]["namespace"] in namespaces
        and matches(spec["selector"]["matchLabels"], s["metadata"]["labels"])
    ]
    out = []
    for endpoint in spec["endpoints"]:
        for service in services:
            ports = {p["name"]: p for p in service["spec"]["ports"]}
            if endpoint["port"] not in ports:
                out.append(f"PROBLEM {service['metadata']['name']} has no port named {endpoint['port']}")
                continue
            target = ports[endpoint["port"]]["targetPort"]
            pods = [(lab, pod) for lab, pod in workloads(manifests) if matches(service["spec"]["selector"], lab)]
            found = [
                f"{c['name']}:{p['containerPort']}"
                for _, pod in pods
                for c in pod["containers"]
                for p in c.get("ports", [])
                if target in (p.get("name"), p["containerPort"])
            ]
            if not found:
                out.append(f"PROBLEM {service['metadata']['name']}/{endpoint['port']}: no container port {target}")
            out += [f"{service['metadata']['name']}/{endpoint['port']} -> {f}" for f in found]
    return out or [f"PROBLEM {monitor['metadata']['name']} selects no Service"]


# -- off by default, and without the operator's API ------------------------------------------------


@pytest.mark.parametrize("api", [[], API], ids=["no-api", "with-api"])
def test_defaults_render_nothing_of_metrics(api) -> None:
    manifests = render(api_versions=api)
    assert of_kind(manifests, "ServiceMonitor") == []
    for sts in of_kind(manifests, "StatefulSet"):
        assert [c["name"] for c in sts["spec"]["template"]["spec"]["containers"]] == ["postgresql"]
    for svc in of_kind(manifests, "Service"):
        assert "http-metrics" not in [p["name"] for p in svc["spec"]["ports"]]
    # The API being there changes nothing while the switches are off: same policies as without it.
    assert of_kind(manifests, "NetworkPolicy") == of_kind(render(), "NetworkPolicy")


def test_without_the_operator_api_no_servicemonitor_and_notes_say_why_and_how() -> None:
    manifests = render(ON)
    assert of_kind(manifests, "ServiceMonitor") == []
    notes = render_notes(ON)
    assert "NOT RENDERED: ServiceMonitors (metrics.serviceMonitor.enabled)" in notes
    assert "monitoring.coreos.com/v1" in notes and "kube-prometheus-stack" in notes
    assert "--api-versions monitoring.coreos.com/v1" in notes
    # The sidecars need no API: they are there, and so is their port.
    sts = find(manifests, "StatefulSet", "atlas-users-postgresql")
    assert "metrics" in [c["name"] for c in sts["spec"]["template"]["spec"]["containers"]]
    # Nothing scrapes, so nothing new may get in.
    assert of_kind(manifests, "NetworkPolicy") == of_kind(render(), "NetworkPolicy")


def test_notes_name_every_switched_on_operator_resource_left_out() -> None:
    notes = render_notes({**ON, "metrics.prometheusRule.enabled": True})
    assert "NOT RENDERED: ServiceMonitors (metrics.serviceMonitor.enabled), PrometheusRule" in notes
    only_rule = render_notes({"metrics.prometheusRule.enabled": True})
    assert "NOT RENDERED: PrometheusRule (metrics.prometheusRule.enabled)." in only_rule
    assert "ServiceMonitors" not in only_rule
    assert "NOT RENDERED" not in render_notes({"metrics.prometheusRule.enabled": True}, api_versions=API)


def test_with_the_operator_api_notes_name_the_jobs_and_not_the_warning() -> None:
    notes = render_notes(ON, api_versions=API)
    assert "NOT RENDERED" not in notes
    for job in ("atlas-users", "atlas-users-postgresql", "atlas-projects", "atlas-projects-postgresql"):
        assert f'job="{job}"' in notes
    assert "NOT RENDERED" not in render_notes({}, api_versions=[])


# -- the ServiceMonitors select exactly the right Services and ports -------------------------------

CASES = {
    "services-only": ({"metrics.serviceMonitor.enabled": True}, {"atlas-users", "atlas-projects"}),
    "users-exporter": (
        {"metrics.serviceMonitor.enabled": True, "users.postgresql.metrics.enabled": True},
        {"atlas-users", "atlas-projects", "atlas-users-postgresql"},
    ),
    "all": (ON, {"atlas-users", "atlas-projects", "atlas-users-postgresql", "atlas-projects-postgresql"}),
    "projects-only": (
        {**ON, "users.enabled": False},
        {"atlas-projects", "atlas-projects-postgresql"},
    ),
    "external-db": (
        {
            "metrics.serviceMonitor.enabled": True,
            "projects.postgresql.metrics.enabled": True,
            "users.postgresql.enabled": False,
            "users.externalDatabase.host": "db.example.test",
            "users.externalDatabase.existingSecret": "external-db",
        },
        {"atlas-users", "atlas-projects", "atlas-projects-postgresql"},
    ),
}


@pytest.mark.parametrize(("values", "expected"), CASES.values(), ids=CASES.keys())
def test_servicemonitors_select_exactly_one_service_each_on_a_port_it_has(values, expected) -> None:
    manifests = render(values, api_versions=API)
    found = monitors(manifests)
    assert set(found) == expected
    for name, monitor in found.items():
        # job = the Service's name (no jobLabel): the contract the alerts and dashboards are written against.
        assert "jobLabel" not in monitor["spec"]
        port = "http-metrics" if name.endswith("-postgresql") else "http"
        container = "metrics" if name.endswith("-postgresql") else name.removeprefix("atlas-")
        number = 9187 if name.endswith("-postgresql") else 8080
        assert scrape_targets(manifests, monitor) == [f"{name}/{port} -> {container}:{number}"]
        (endpoint,) = monitor["spec"]["endpoints"]
        assert endpoint["path"] == "/metrics"
        assert set(monitor["spec"]) <= SERVICEMONITOR_SPEC_FIELDS
        assert set(endpoint) <= ENDPOINT_FIELDS


def test_the_selection_check_fails_on_a_renamed_port_or_a_relabelled_service() -> None:
    """scrape_targets can fail: a Service port renamed, or a selector that no Service matches."""
    manifests = render(ON, api_versions=API)
    monitor = monitors(manifests)["atlas-users-postgresql"]
    renamed = copy.deepcopy(manifests)
    for svc in of_kind(renamed, "Service"):
        for port in svc["spec"]["ports"]:
            if port["name"] == "http-metrics":
                port["name"] = "metrics"
    assert scrape_targets(renamed, monitor) == ["PROBLEM atlas-users-postgresql has no port named http-metrics"]
    elsewhere = copy.deepcopy(monitor)
    elsewhere["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "users-db"
    assert scrape_targets(manifests, elsewhere) == ["PROBLEM atlas-users-postgresql selects no Service"]


def test_servicemonitor_settings_and_labels() -> None:
    relabel = [{"sourceLabels": ["__meta_kubernetes_pod_node_name"], "targetLabel": "node", "action": "replace"}]
    drop = [{"sourceLabels": ["__name__"], "regex": "go_.*", "action": "drop"}]
    values = {
        **ON,
        "metrics.serviceMonitor.interval": "15s",
        "metrics.serviceMonitor.scrapeTimeout": "5s",
        "metrics.serviceMonitor.honorLabels": True,
        "metrics.serviceMonitor.labels": {"release": "kube-prometheus-stack", "app.kubernetes.io/name": "other"},
        "metrics.serviceMonitor.relabelings": relabel,
        "metrics.serviceMonitor.metricRelabelings": drop,
    }
    for monitor in monitors(render(values, api_versions=API)).values():
        assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
        # The chart's own labels win: they say what the resource is.
        assert monitor["metadata"]["labels"]["app.kubernetes.io/name"] == "atlas"
        assert monitor["metadata"]["namespace"] == NAMESPACE
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
        (endpoint,) = monitor["spec"]["endpoints"]
        assert (endpoint["interval"], endpoint["scrapeTimeout"], endpoint["honorLabels"]) == ("15s", "5s", True)
        assert endpoint["relabelings"] == relabel and endpoint["metricRelabelings"] == drop
    defaults = monitors(render(ON, api_versions=API))["atlas-users"]["spec"]["endpoints"][0]
    assert defaults["honorLabels"] is False  # the services' `service` label becomes exported_service
    assert "relabelings" not in defaults and "metricRelabelings" not in defaults


# -- the exporter sidecar --------------------------------------------------------------------------


def exporter(manifests: list[dict], name: str = "users") -> tuple[dict, dict]:
    spec = find(manifests, "StatefulSet", f"atlas-{name}-postgresql")["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "metrics"]
    return spec, container


def test_exporter_is_the_pinned_official_image_restricted_with_resources() -> None:
    with open(os.path.join(REPO_ROOT, "charts", "atlas", "values.yaml")) as f:
        image = yaml.safe_load(f)["users"]["postgresql"]["metrics"]["image"]
    assert image["repository"] == "quay.io/prometheuscommunity/postgres-exporter"
    assert image["tag"] == "v0.20.1"
    pod, container = exporter(render(ON))
    assert container["image"] == "quay.io/prometheuscommunity/postgres-exporter:v0.20.1"
    ctx = container["securityContext"]
    assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 65534 and ctx["runAsGroup"] == 65534
    assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
    assert ctx["privileged"] is False and ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    # The password file is 0440 for the pod's fsGroup: the exporter's other uid reads it through that group.
    assert pod["securityContext"]["fsGroup"] == 70
    assert set(container["resources"]) == {"requests", "limits"}
    assert all(set(container["resources"][k]) == {"cpu", "memory"} for k in ("requests", "limits"))


def test_exporter_port_probe_and_no_readiness_probe() -> None:
    _, container = exporter(render(ON))
    assert container["ports"] == [{"name": "http-metrics", "containerPort": 9187, "protocol": "TCP"}]
    assert "--web.listen-address=:9187" in container["args"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/", "port": "http-metrics"}
    # The pod's readiness is the database's: its headless Service lists only ready pods.
    assert "readinessProbe" not in container and "startupProbe" not in container


@pytest.mark.parametrize(
    ("values", "secret", "key"),
    [
        ({}, "atlas-users-postgresql", "password"),
        (
            {"users.postgresql.auth.existingSecret": "atlas-users-db", "users.postgresql.auth.secretKey": "pw"},
            "atlas-users-db",
            "pw",
        ),
    ],
    ids=["chart-secret", "existing-secret"],
)
def test_exporter_logs_in_as_the_service_with_the_statefulsets_secret_as_a_file(values, secret, key) -> None:
    manifests = render({**ON, "users.postgresql.auth.database": "atlas_users", **values})
    pod, container = exporter(manifests)
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env == {
        "DATA_SOURCE_URI": "127.0.0.1:5432/atlas_users?sslmode=disable",
        "DATA_SOURCE_USER": "users",
        "DATA_SOURCE_PASS_FILE": "/run/secrets/postgresql/password",
    }
    (mount,) = container["volumeMounts"]
    assert (mount["name"], mount["mountPath"], mount["readOnly"]) == ("password", "/run/secrets/postgresql", True)
    (volume,) = [v for v in pod["volumes"] if v["name"] == "password"]
    assert volume["secret"]["secretName"] == secret
    assert volume["secret"]["items"] == [{"key": key, "path": "password"}]
    # The same volume the database container reads its password from.
    (pg,) = [c for c in pod["containers"] if c["name"] == "postgresql"]
    assert {"name": "password", "mountPath": "/run/secrets/postgresql", "readOnly": True} in pg["volumeMounts"]


def test_switching_the_exporter_on_changes_only_what_an_upgrade_may_change() -> None:
    """The release role's StatefulSet guard (roles/release/filter_plugins/statefulsets.py) lets it through."""
    spec = importlib.util.spec_from_file_location("sts", f"{REPO_ROOT}/roles/release/filter_plugins/statefulsets.py")
    guard = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(guard)
    off, on = of_kind(render(), "StatefulSet"), of_kind(render(ON), "StatefulSet")
    assert guard.statefulset_changes(off, yaml.safe_dump_all(on)) == []
    assert guard.statefulset_changes(on, yaml.safe_dump_all(off)) == []
    for before, after in zip(off, on, strict=True):
        assert {k: v for k, v in before["spec"].items() if k != "template"} == {
            k: v for k, v in after["spec"].items() if k != "template"
        }


# -- refusals --------------------------------------------------------------------------------------

EXTERNAL = {"users.externalDatabase.host": "db.example.test", "users.externalDatabase.existingSecret": "external-db"}


def test_cross_key_errors_are_reported_together_naming_the_keys() -> None:
    error = render_error(
        {
            **ON,
            "users.postgresql.enabled": False,
            **EXTERNAL,
            "metrics.serviceMonitor.interval": "30s",
            "metrics.serviceMonitor.scrapeTimeout": "1m",
        }
    )
    assert "users.postgresql.metrics.enabled needs users.postgresql.enabled" in error
    assert "metrics.serviceMonitor.scrapeTimeout (1m) must not exceed metrics.serviceMonitor.interval (30s)" in error


def test_a_scrape_timeout_equal_to_the_interval_or_in_other_units_is_accepted() -> None:
    for interval, timeout in (("30s", "30s"), ("1m", "59s"), ("2h", "90m"), ("1s", "999ms")):
        render({**ON, "metrics.serviceMonitor.interval": interval, "metrics.serviceMonitor.scrapeTimeout": timeout})
    assert "must not exceed" in render_error(
        {**ON, "metrics.serviceMonitor.interval": "1s", "metrics.serviceMonitor.scrapeTimeout": "1001ms"}
    )


def test_a_selector_that_would_let_every_pod_in_is_refused() -> None:
    error = render_error({**ON, "metrics.serviceMonitor.networkPolicy.podSelector": {"app.kubernetes.io/name": None}})
    assert "metrics.serviceMonitor.networkPolicy: namespaceSelector and podSelector are both empty" in error
    # With network policies off there is nothing to let in.
    render(
        {
            **ON,
            "networkPolicy.enabled": False,
            "metrics.serviceMonitor.networkPolicy.podSelector": {"app.kubernetes.io/name": None},
        }
    )


SM = "metrics.serviceMonitor"
SCHEMA_REFUSALS = {
    "interval-no-unit": ({f"{SM}.interval": "30"}, "interval"),
    "interval-days": ({f"{SM}.interval": "1d"}, "interval"),
    "interval-zero": ({f"{SM}.interval": "0s"}, "interval"),
    "timeout-number": ({f"{SM}.scrapeTimeout": 10}, "scrapeTimeout"),
    "label-not-string": ({f"{SM}.labels": {"release": 1}}, "release"),
    "label-bad-name": ({f"{SM}.labels": {"bad name": "x"}}, "labels"),
    "honor-string": ({f"{SM}.honorLabels": "yes"}, "honorLabels"),
    "relabel-action": ({f"{SM}.relabelings": [{"action": "rename"}]}, "action"),
    "relabel-unknown-key": ({f"{SM}.metricRelabelings": [{"source_labels": ["a"]}]}, "source_labels"),
    "unknown-key": ({f"{SM}.intervall": "30s"}, "intervall"),
    "selector-not-string": ({f"{SM}.networkPolicy.namespaceSelector": {"team": True}}, "team"),
    "exporter-tag-empty": ({"users.postgresql.metrics.image.tag": ""}, "tag"),
    "exporter-unknown-key": ({"projects.postgresql.metrics.port": 9100}, "port"),
}


@pytest.mark.parametrize(("values", "needle"), SCHEMA_REFUSALS.values(), ids=SCHEMA_REFUSALS.keys())
def test_schema_refuses_bad_metrics_settings(values, needle) -> None:
    error = render_error(values)
    assert "values don't meet the specifications of the schema" in error
    assert needle in error


# -- who may reach what: a model of NetworkPolicy evaluation ---------------------------------------


def _selects(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels only: the chart uses no matchExpressions) against labels; {} selects all."""
    assert not (selector or {}).get("matchExpressions"), "matchExpressions not modelled"
    return matches((selector or {}).get("matchLabels") or {}, labels)


def _peer_admits(peer: dict, pod: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        raise AssertionError("ipBlock peers are not modelled")
    if "namespaceSelector" in peer:
        if not _selects(peer["namespaceSelector"], pod.namespace_labels):
            return False
    elif pod.namespace != policy_namespace:
        return False  # a podSelector alone means the policy's own namespace
    return _selects(peer.get("podSelector"), pod.labels)


def _port_admits(rule_ports: list | None, port: int, named: dict[int, str]) -> bool:
    if not rule_ports:
        return True
    return any(p.get("protocol", "TCP") == "TCP" and p.get("port") in (port, named.get(port)) for p in rule_ports)


def ingress_allowed(policies: list[dict], source: Pod, target: Pod, port: int) -> bool:
    """Kubernetes' semantics: a pod selected by any Ingress policy takes only what one of their rules allows."""
    selecting = [
        p
        for p in policies
        if p["metadata"]["namespace"] == target.namespace
        and "Ingress" in p["spec"]["policyTypes"]
        and _selects(p["spec"]["podSelector"], target.labels)
    ]
    if not selecting:
        return True
    return any(
        _port_admits(rule.get("ports"), port, target.named_ports)
        and any(_peer_admits(peer, source, p["metadata"]["namespace"]) for peer in rule.get("from", []))
        for p in selecting
        for rule in p["spec"].get("ingress") or []
    )


class Pod:
    def __init__(self, name, labels, namespace=NAMESPACE, named_ports=None) -> None:
        self.name, self.labels, self.namespace = name, labels, namespace
        self.namespace_labels = {"kubernetes.io/metadata.name": namespace}
        self.named_ports = named_ports or {}  # number -> the container port's name

    def __repr__(self) -> str:
        return f"{self.namespace}/{self.name}"


def chart_pods(manifests: list[dict]) -> list[Pod]:
    pods = []
    for labels, spec in workloads(manifests):
        named = {p["containerPort"]: p["name"] for c in spec["containers"] for p in c.get("ports", []) if "name" in p}
        pods.append(Pod(labels["app.kubernetes.io/component"], labels, named_ports=named))
    return pods


PROMETHEUS = Pod(
    "prometheus-kube-prometheus-stack-prometheus-0",
    {"app.kubernetes.io/name": "prometheus", "prometheus": "kube-prometheus-stack-prometheus"},
    namespace="monitoring",
)
OUTSIDERS = [
    Pod("grafana", {"app.kubernetes.io/name": "grafana"}, namespace="monitoring"),
    Pod("prometheus-agent", {"app.kubernetes.io/name": "prometheus-agent"}, namespace="monitoring"),
    Pod("random", {"app": "random"}),
    Pod("ingress", {"app.kubernetes.io/name": "ingress-nginx"}, namespace="ingress-nginx"),
]
PORTS = (5432, 8080, 9187, 9090)


def reachability(manifests: list[dict], sources: list[Pod]) -> set[tuple[str, str, int]]:
    policies = of_kind(manifests, "NetworkPolicy")
    targets = chart_pods(manifests)
    return {
        (repr(src), repr(dst), port)
        for src, dst, port in itertools.product(sources + targets, targets, PORTS)
        if ingress_allowed(policies, src, dst, port)
    }


def test_prometheus_gets_in_on_the_scraped_ports_only_and_nothing_else_new() -> None:
    before = reachability(render(api_versions=API), [PROMETHEUS, *OUTSIDERS])
    after = reachability(render(ON, api_versions=API), [PROMETHEUS, *OUTSIDERS])
    assert before <= after
    assert after - before == {
        ("monitoring/prometheus-kube-prometheus-stack-prometheus-0", f"atlas/{dst}", port)
        for dst, port in (
            ("users", 8080),
            ("projects", 8080),
            ("users-postgresql", 9187),
            ("projects-postgresql", 9187),
        )
    }


def test_only_scraped_exporters_let_prometheus_in() -> None:
    values = {"metrics.serviceMonitor.enabled": True, "users.postgresql.metrics.enabled": True}
    reach = reachability(render(values, api_versions=API), [PROMETHEUS])
    mine = {(dst, port) for src, dst, port in reach if src.startswith("monitoring/")}
    assert mine == {("atlas/users", 8080), ("atlas/projects", 8080), ("atlas/users-postgresql", 9187)}


def test_a_configured_namespace_admits_prometheus_there_only() -> None:
    values = {**ON, "metrics.serviceMonitor.networkPolicy.namespaceSelector": {"kubernetes.io/metadata.name": "obs"}}
    manifests = render(values, api_versions=API)
    policies = of_kind(manifests, "NetworkPolicy")
    (users,) = [p for p in chart_pods(manifests) if p.name == "users"]
    there = Pod("prometheus-0", {"app.kubernetes.io/name": "prometheus"}, namespace="obs")
    assert ingress_allowed(policies, there, users, 8080)
    assert not ingress_allowed(policies, PROMETHEUS, users, 8080)  # the same pod in "monitoring"


def test_the_model_sees_a_policy_that_admits_too_much() -> None:
    """The reachability check can fail: a rule without ports lets Prometheus reach the database's 5432."""
    manifests = copy.deepcopy(render(ON, api_versions=API))
    policy = find(manifests, "NetworkPolicy", "atlas-users-postgresql")
    del policy["spec"]["ingress"][-1]["ports"]
    reach = reachability(manifests, [PROMETHEUS])
    assert ("monitoring/prometheus-kube-prometheus-stack-prometheus-0", "atlas/users-postgresql", 5432) in reach


def test_the_database_policy_still_allows_no_egress() -> None:
    """The exporter reaches its database over the pod's loopback, which no NetworkPolicy governs."""
    for name in ("users", "projects"):
        policy = find(render(ON, api_versions=API), "NetworkPolicy", f"atlas-{name}-postgresql")["spec"]
        assert "Egress" in policy["policyTypes"] and not policy.get("egress")


# -- lint and the values file the scans use --------------------------------------------------------


def test_helm_lint_strict_with_everything_on() -> None:
    """helm 3.17's lint takes no --api-versions, so it sees the sidecars, ports and policies, not the monitors."""
    for result in (lint(values_files=[VALUES_FILE]), lint(ON)):
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_values_file_switches_every_metrics_part_on() -> None:
    manifests = render(values_files=[VALUES_FILE], api_versions=API)
    assert set(monitors(manifests)) == {
        "atlas-users",
        "atlas-projects",
        "atlas-users-postgresql",
        "atlas-projects-postgresql",
    }


def test_the_alert_rules_select_exactly_the_jobs_the_servicemonitors_make() -> None:
    """The interface with metrics.prometheusRule: job = the scraped Service's name, one per ServiceMonitor."""
    for values in (ON, {**ON, "projects.postgresql.metrics.enabled": False}, {**ON, "users.enabled": False}):
        manifests = render({**values, "metrics.prometheusRule.enabled": True}, api_versions=API)
        jobs = {
            line.split(" -> ")[0].split("/")[0]
            for monitor in monitors(manifests).values()
            for line in scrape_targets(manifests, monitor)
        }
        (rule,) = of_kind(manifests, "PrometheusRule")
        exprs = [r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]]
        selected = {job for expr in exprs for job in re.findall(r'job="([^"]+)"', expr)}
        assert selected == jobs, values
