"""The chart's alerting rules and dashboards against a real Prometheus scraping the real services.

What runs: Debian's Prometheus 2.42.0 on 127.0.0.1, scraping users and projects (gunicorn, as deployed,
each on its own migrated database of a real PostgreSQL 15) and two prometheus-postgres-exporter 0.11.1,
one per database, logged in as the service's role (as the chart's sidecar is). Prometheus loads the
rendered PrometheusRule's groups as its rule file.

The scrape config is what the Prometheus Operator makes of the rendered ServiceMonitors
(tests/support/prometheus.py, operator_scrape_config: prometheus-operator v0.93.0,
pkg/prometheus/promcfg.go). Translated, because there is no cluster: Kubernetes discovery becomes one
static target per ServiceMonitor carrying the __meta_kubernetes_* labels discovery would give the
rendered Service, its pod and port; the operator's relabelings then make job, namespace, service, pod,
container and endpoint in the real Prometheus. The targets' addresses are the local processes'.

Stand-in: postgres_exporter 0.11.1 for the chart's v0.20.1 image (see test_postgres_exporter.py). Every
exporter metric the rules and dashboards use is in v0.20.1's sources too (collector/pg_stat_activity.go
count and max_tx_duration, pg_stat_database.go, pg_setting.go, exporter/postgres_exporter.go `up`).

After real traffic (created rows, 404s, 400s, requests held 0.4 s by a table lock), every dashboard
query returns data, every rule evaluates without error, the latency SLO counts the slow requests, and
every metric an alert or a panel names is in the live scrape (so a renamed metric fails here).
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

import psycopg2
import pytest
import requests
import yaml

from tests.services.conftest import migrate
from tests.support.chart import NAMESPACE, REPO_ROOT, find, of_kind
from tests.support.processes import ServiceProcess
from tests.support.prometheus import (
    EXPORTER,
    PROMETHEUS,
    PrometheusServer,
    discovered,
    metric_names,
    operator_scrape_config,
    postgres_exporter,
    render_monitoring,
    wait_for,
)

VALUES = os.path.join(REPO_ROOT, "tests", "chart", "values", "monitoring.yaml")
SCRAPE_EVERY_SECOND = {"metrics.serviceMonitor.interval": "1s", "metrics.serviceMonitor.scrapeTimeout": "1s"}
SLOW_SECONDS = 0.4  # above the latency SLO's default 0.25 s bucket
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.access(PROMETHEUS, os.X_OK) and os.access(EXPORTER, os.X_OK)),
        reason="prometheus or prometheus-postgres-exporter not installed (make setup)",
    ),
]


def pod_of(manifests: list[dict], service: dict) -> tuple[str, dict]:
    """(a pod name, its container spec) for the workload behind a rendered Service: the Deployment or
    StatefulSet whose pod labels the Service selects."""
    selector = service["spec"]["selector"]
    for workload in of_kind(manifests, "Deployment") + of_kind(manifests, "StatefulSet"):
        template = workload["spec"]["template"]
        if selector.items() <= template["metadata"]["labels"].items():
            name = workload["metadata"]["name"]
            pod = f"{name}-0" if workload["kind"] == "StatefulSet" else f"{name}-7c9d5b6f4-x2x7q"
            return pod, template["spec"]
    raise AssertionError(f"no workload behind Service {service['metadata']['name']}")


def scrape_configs(manifests: list[dict], addresses: dict[str, str]) -> list[dict]:
    """The operator's scrape config for every rendered ServiceMonitor, its target the local process."""
    configs = []
    for monitor in of_kind(manifests, "ServiceMonitor"):
        (service,) = [
            s for s in of_kind(manifests, "Service")
            if monitor["spec"]["selector"]["matchLabels"].items() <= s["metadata"]["labels"].items()
        ]  # fmt: skip
        assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
        pod, pod_spec = pod_of(manifests, service)
        for index, endpoint in enumerate(monitor["spec"]["endpoints"]):
            assert endpoint["port"] in [p["name"] for p in service["spec"]["ports"]]
            port = next(p for p in service["spec"]["ports"] if p["name"] == endpoint["port"])
            (container,) = [
                c for c in pod_spec["containers"] if port["targetPort"] in [p["name"] for p in c.get("ports", [])]
            ]  # fmt: skip
            target = discovered(addresses[service["metadata"]["name"]], service, pod, container["name"], port["name"])
            configs.append(operator_scrape_config(monitor, index, [target]))
    return configs


def dashboards(manifests: list[dict]) -> list[dict]:
    found = []
    for config_map in of_kind(manifests, "ConfigMap"):
        if config_map["metadata"]["labels"].get("grafana_dashboard") == "1":
            (text,) = config_map["data"].values()
            found.append(yaml.safe_load(text))
    return found


def panel_queries(dashboard: dict) -> list[tuple[str, str]]:
    """(panel title, expr) with the dashboard's variables as Grafana substitutes them: a constant's value,
    a multi-value custom variable's options as a regex alternation; $__rate_interval as Grafana makes it
    for a 1 s scrape interval (at least 4 scrape intervals, here 15s)."""
    values = {}
    for var in dashboard["templating"]["list"]:
        if var["type"] == "constant":
            values[var["name"]] = var["query"]
        elif var["type"] == "custom":
            options = var["query"].split(",")
            assert all(re.fullmatch(r"[a-z0-9-]+", o) for o in options), options  # nothing to escape in a regex
            values[var["name"]] = "(" + "|".join(options) + ")"
    queries = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$__rate_interval", "15s")
            for name, value in sorted(values.items(), key=lambda kv: -len(kv[0])):
                expr = expr.replace(f"${name}", value)
            assert "$" not in expr, f"{panel['title']}: an unknown variable in {expr}"
            queries.append((panel["title"], expr))
    return queries


def selected_names(expr: str) -> set[str]:
    """Metric names an expression selects: every selector in the chart's expressions has braces."""
    return set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{", expr))


@pytest.fixture(scope="module")
def stack(postgres_server, tmp_path_factory):
    """Render, start everything, drive traffic; yield what the tests look at."""
    # Scraped every second (the ServiceMonitors' interval), so a few seconds of traffic fill every window.
    manifests = render_monitoring(SCRAPE_EVERY_SECOND, [VALUES])
    rules = find(manifests, "PrometheusRule", "atlas-metrics")["spec"]
    workdir = tmp_path_factory.mktemp("monitoring")
    rule_file = workdir / "rules.yaml"
    rule_file.write_text(yaml.safe_dump({"groups": rules["groups"]}))

    names = {svc: f"{svc}_{uuid.uuid4().hex[:8]}" for svc in ("users", "projects")}
    envs = {svc: postgres_server.create_database(name) for svc, name in names.items()}
    for svc, env in envs.items():
        migrate(env, svc)
    started = time.monotonic()
    try:
        with (
            ServiceProcess("users", env=envs["users"], workers=2, threads=2) as users,
            ServiceProcess("projects", env={**envs["projects"], "USERS_SERVICE_URL": users.base_url}) as projects,
            postgres_exporter(dsn(envs["users"])) as users_exporter,
            postgres_exporter(dsn(envs["projects"])) as projects_exporter,
        ):  # fmt: skip
            addresses = {
                "atlas-users": f"{users.host}:{users.port}", "atlas-projects": f"{projects.host}:{projects.port}",
                "atlas-users-postgresql": users_exporter, "atlas-projects-postgresql": projects_exporter,
            }  # fmt: skip
            configs = scrape_configs(manifests, addresses)
            with PrometheusServer(configs, rule_files=[str(rule_file)]).running() as prometheus:
                # Prometheus hands targets to its scrapers ~5 s after start (the discovery manager's update
                # throttle): traffic before the first scrape would not count as an increase.
                waited = wait_for(lambda: _all_scraped(prometheus, len(configs)), 30, "a first scrape of every target")
                counts = traffic(users, projects, envs["users"])
                counts["first_scrape_s"] = round(waited, 1)
                # Enough scrapes after the traffic for every rate() window the panels use (15s) to hold two.
                wait_for(lambda: _served(prometheus) >= counts["api"], 30, "the traffic in Prometheus")
                time.sleep(3)
                yield {
                    "manifests": manifests, "rules": rules, "prometheus": prometheus, "counts": counts,
                    "scrape_configs": configs, "addresses": addresses, "started": started,
                }  # fmt: skip
    finally:
        for name in names.values():
            postgres_server.drop_database(name)


def dsn(env: dict[str, str]) -> str:
    return (
        f"postgresql://{env['PGUSER']}:{env['PGPASSWORD']}@{env['PGHOST']}:{env['PGPORT']}/{env['PGDATABASE']}"
        "?sslmode=disable"
    )


def _all_scraped(prometheus: PrometheusServer, expected: int) -> bool:
    targets = prometheus.targets()
    return len(targets) == expected and all(t["health"] == "up" for t in targets)


def _served(prometheus: PrometheusServer) -> float:
    result = prometheus.query('sum(atlas_http_requests_total{exported_endpoint=~"/api/.*"})')
    return float(result[0]["value"][1]) if result else 0.0


def traffic(users: ServiceProcess, projects: ServiceProcess, users_db: dict[str, str]) -> dict[str, int]:
    """Real requests of every kind the panels show: created (201), read (200), missing (404), refused
    (4xx), and slow ones (held by a lock on the users table), in rounds a scrape apart. Prometheus counts
    a counter's increase from the first sample it sees, so every series must exist before most of its
    requests: a burst inside one scrape interval would show no rate at all."""
    counts = {"api": 0, "slow": 0}
    session = requests.Session()

    def call(method: str, url: str, **kwargs) -> requests.Response:
        counts["api"] += 1
        return session.request(method, url, timeout=10, **kwargs)

    conn = psycopg2.connect(
        host=users_db["PGHOST"], port=users_db["PGPORT"], dbname=users_db["PGDATABASE"],
        user=users_db["PGUSER"], password=users_db["PGPASSWORD"],
    )  # fmt: skip
    try:
        for round_ in range(4):
            for i in range(3):
                body = {"email": f"u{round_}-{i}@example.test", "name": f"U {round_} {i}"}
                response = call("POST", users.url("/api/v1/users"), json=body)
                assert response.status_code == 201, response.text
                owner = response.json()["id"]
                response = call(
                    "POST", projects.url("/api/v1/projects"), json={"name": f"p{round_}{i}", "owner_id": owner}
                )
                assert response.status_code == 201, response.text
                assert call("GET", users.url(f"/api/v1/users/{owner}")).status_code == 200
            assert call("GET", users.url("/api/v1/users")).status_code == 200
            assert call("GET", projects.url("/api/v1/projects")).status_code == 200
            assert call("GET", users.url("/api/v1/users/999999")).status_code == 404
            assert call("POST", users.url("/api/v1/users"), json={"email": 1}).status_code in (400, 422)
            refused = call("POST", projects.url("/api/v1/projects"), json={"name": "x", "owner_id": 999999})
            assert 400 <= refused.status_code < 500, refused.text
            session.get(users.url("/readyz"), timeout=5)
            if round_ >= 2:  # slow: a read that waits behind an exclusive lock held for SLOW_SECONDS
                with conn.cursor() as cur:
                    cur.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
                    reader = threading.Thread(target=lambda o=owner: call("GET", users.url(f"/api/v1/users/{o}")))
                    reader.start()
                    time.sleep(SLOW_SECONDS)
                conn.commit()
                reader.join(10)
                counts["slow"] += 1
            time.sleep(1.2)
    finally:
        conn.close()
    return counts


# -- the tests -------------------------------------------------------------------------------------------


def test_targets_are_labelled_as_the_operator_labels_them(stack):
    targets = stack["prometheus"].targets()
    assert len(targets) == 4, targets
    assert all(t["health"] == "up" for t in targets), [(t["scrapePool"], t["lastError"]) for t in targets]
    by_job = {t["labels"]["job"]: t for t in targets}
    assert set(by_job) == {"atlas-users", "atlas-projects", "atlas-users-postgresql", "atlas-projects-postgresql"}
    users = by_job["atlas-users"]
    assert users["scrapePool"] == "serviceMonitor/atlas/atlas-users/0"
    assert users["labels"] == {
        "job": "atlas-users", "namespace": NAMESPACE, "service": "atlas-users", "endpoint": "http",
        "pod": "atlas-users-7c9d5b6f4-x2x7q", "container": "users", "instance": stack["addresses"]["atlas-users"],
    }  # fmt: skip
    assert by_job["atlas-users-postgresql"]["labels"]["endpoint"] == "http-metrics"
    assert by_job["atlas-users-postgresql"]["labels"]["container"] == "metrics"
    # The services' own `service` and `endpoint` labels, pushed aside by the target's (honor_labels false).
    (series,) = stack["prometheus"].query('atlas_db_pool_size{job="atlas-users"}')
    assert series["metric"]["exported_service"] == "users" and series["metric"]["service"] == "atlas-users"
    took = time.monotonic() - stack["started"]
    counts = stack["counts"]
    print(f"{len(targets)} targets up (first scrape {counts['first_scrape_s']}s after Prometheus was ready); "
          f"{counts['api']} API requests; stack ready in {took:.1f}s")  # fmt: skip


def test_every_dashboard_panel_returns_data(stack):
    found = dashboards(stack["manifests"])
    assert sorted(d["title"] for d in found) == [
        "Atlas / databases (atlas/atlas)", "Atlas / projects (atlas/atlas)", "Atlas / users (atlas/atlas)"
    ]  # fmt: skip
    empty, count = [], 0
    for dashboard in found:
        for title, expr in panel_queries(dashboard):
            count += 1
            if not stack["prometheus"].query(expr):
                empty.append(f"{dashboard['title']} / {title}: {expr}")
    assert not empty, "queries without data:\n" + "\n".join(empty)
    print(f"{count} panel queries over {len(found)} dashboards returned data")


def test_every_rule_evaluates_without_error(stack):
    prometheus = stack["prometheus"]
    expected = sum(len(g["rules"]) for g in stack["rules"]["groups"])

    def evaluated() -> bool:
        rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
        return len(rules) == expected and all(r.get("lastEvaluation", "").startswith("20") for r in rules)

    wait_for(evaluated, 20, "every rule evaluated once")
    rules = [r for g in prometheus.api("rules")["groups"] for r in g["rules"]]
    broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not broken, broken
    for rule in rules:
        prometheus.query(rule["query"])  # raises on an evaluation error
    # Nothing is wrong with the stack, so no page is pending or firing.
    active = [(a["labels"]["alertname"], a["state"]) for a in prometheus.api("alerts")["alerts"]]
    assert not [a for a in active if a[0] in ("AtlasServiceDown", "AtlasServiceAbsent", "AtlasDatabaseDown")], active
    print(f"{len(rules)} rules healthy; active alerts: {active or 'none'}")


def test_the_slo_ratios_count_the_slow_and_the_failed_requests(stack):
    prometheus = stack["prometheus"]
    wait_for(lambda: prometheus.query('namespace_job:atlas_http_requests_slow:ratio_rate5m{job="atlas-users"}'), 20,
             "the recorded latency ratio")  # fmt: skip
    (slow,) = prometheus.query('namespace_job:atlas_http_requests_slow:ratio_rate5m{job="atlas-users"}')
    # 2 of the users service's API requests waited for the lock: a small, non-zero fraction of them.
    assert 0 < float(slow["value"][1]) < 0.5, slow
    (fast,) = prometheus.query('namespace_job:atlas_http_requests_slow:ratio_rate5m{job="atlas-projects"}')
    assert float(fast["value"][1]) == 0, fast
    # No 5xx was served: the availability ratio has no numerator, so no series.
    assert prometheus.query('namespace_job:atlas_http_requests_5xx:ratio_rate5m{job="atlas-users"}') == []
    print(f"users slow ratio over 5m: {float(slow['value'][1]):.3f}")


def unscraped(exprs: list[str], scraped: set[str], recorded: set[str]) -> dict[str, str]:
    """{metric name: an expression naming it} for names neither scraped nor recorded by a rule."""
    missing = {}
    for expr in exprs:
        names = selected_names(expr)
        assert names, f"no metric found in {expr}"
        for name in names - scraped - recorded:
            missing.setdefault(name, expr)
    return missing


def test_every_metric_the_rules_and_dashboards_name_is_scraped(stack):
    scraped = {"up"}  # Prometheus's own, per target
    for address in stack["addresses"].values():
        scraped |= metric_names(requests.get(f"http://{address}/metrics", timeout=10).text)
    recorded = {r["record"] for g in stack["rules"]["groups"] for r in g["rules"] if "record" in r}
    exprs = [r["expr"] for g in stack["rules"]["groups"] for r in g["rules"]]
    exprs += [expr for d in dashboards(stack["manifests"]) for _, expr in panel_queries(d)]
    assert unscraped(exprs, scraped, recorded) == {}
    used = set().union(*(selected_names(e) for e in exprs))
    assert recorded <= used, f"recorded but never used: {recorded - used}"
    # The check can fail: one metric renamed in the expressions (or, the same, in the services) is caught.
    renamed = [e.replace("atlas_db_pool_size", "atlas_db_pool_max") for e in exprs]
    assert set(unscraped(renamed, scraped, recorded)) == {"atlas_db_pool_max"}
    bucket_renamed = [e.replace("_seconds_bucket", "_bucket") for e in exprs]
    assert set(unscraped(bucket_renamed, scraped, recorded)) == {"atlas_http_request_duration_bucket"}
    print(f"{len(used - recorded)} scraped metric names used, of {len(scraped)} scraped; {len(recorded)} recorded")
