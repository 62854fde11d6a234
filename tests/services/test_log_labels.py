"""The services' real log lines through the Alloy pipeline's label rules: few streams whatever the traffic.

Both services run as production runs them (python -m <service> serve: granian) on their own real
PostgreSQL, get real traffic (successes, 4xx, a call across services, a database outage), and their
output is what the container runtime would hand Alloy. Each line then goes through a model of the
pipeline in roles/observability/templates/atlas-logs.alloy.j2 (tests/support/alloy_log_pipeline.py,
read in grafana/alloy v1.18.1), fed with the pods the chart renders. The real Alloy and Loki run only
in a cluster: this shows what the config's rules make of these lines, not that Alloy reads the file.
"""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from tests.services.conftest import migrate
from tests.support import alloy_config, chart
from tests.support.alloy_log_pipeline import Pipeline, pod_targets
from tests.support.logs_doc import table
from tests.support.postgres import PostgresServer, wait_until
from tests.support.processes import ServiceProcess

ROUNDS = 4  # traffic rounds before the first look; as many again after it
OUTAGE_ID = "outage-1"  # the request id of the calls made while the database is down


def _fresh(url: str, method: str = "GET", **kwargs) -> requests.Response:
    return requests.request(method, url, timeout=10, **kwargs)


def _round(users: ServiceProcess, projects: ServiceProcess, n: int) -> None:
    """One round: every kind of answer both services give, each request with its own id."""
    rid = f"round-{n}-{uuid.uuid4().hex[:8]}"
    user = _fresh(users.url("/api/v1/users"), "POST", json={"email": f"u{n}@example.org", "name": f"U{n}"})
    assert user.status_code == 201
    uid = user.json()["id"]
    assert _fresh(users.url(f"/api/v1/users/{uid}")).status_code == 200
    assert _fresh(users.url(f"/api/v1/users/{uid + 100000}")).status_code == 404
    assert _fresh(users.url("/api/v1/users"), "POST", json={"email": "not an address"}).status_code in (400, 422)
    assert _fresh(users.url(f"/no/such/path/{n}")).status_code == 404
    # projects asks users for the owner, passing the request id on.
    created = _fresh(
        projects.url("/api/v1/projects"), "POST", json={"name": f"P{n}", "owner_id": uid}, headers={"X-Request-ID": rid}
    )
    assert created.status_code == 201, created.text
    assert _fresh(projects.url("/api/v1/projects"), "POST", json={"name": "x", "owner_id": uid + 100000}).status_code
    assert _fresh(projects.url("/readyz")).status_code == 200


@pytest.fixture(scope="module")
def run():
    """Both services' output after ROUNDS rounds and after 2 x ROUNDS plus an outage, and the ids used."""
    with PostgresServer().running() as pg:
        users_env, projects_env = pg.create_database("users"), pg.create_database("projects")
        migrate(users_env, "users")
        migrate(projects_env, "projects")
        with (
            ServiceProcess("users", env=users_env, workers=1, threads=2) as users,
            ServiceProcess(
                "projects", env={**projects_env, "USERS_SERVICE_URL": users.base_url}, workers=1
            ) as projects,
        ):
            for n in range(ROUNDS):
                _round(users, projects, n)
            first = {"users": users.logs(), "projects": projects.logs()}
            for n in range(ROUNDS, 2 * ROUNDS):
                _round(users, projects, n)
            pg.stop()  # the failing database call: both answer 503 and log why
            assert _fresh(users.url("/api/v1/users/1"), headers={"X-Request-ID": OUTAGE_ID}).status_code == 503
            assert _fresh(projects.url("/api/v1/projects"), headers={"X-Request-ID": OUTAGE_ID}).status_code == 503
            pg.start()
            wait_until(lambda: _fresh(users.url("/readyz")).status_code == 200, timeout=10)
            assert projects.stop() == 0 and users.stop() == 0  # the server's shutdown lines are part of it
            final = {"users": users.logs(), "projects": projects.logs()}
        with open(pg.logfile, encoding="utf-8", errors="replace") as fh:
            postgres = fh.read()
    return {"first": first, "final": final, "postgres": postgres}


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def test_every_line_the_services_write_is_one_json_object(run):
    for service, output in run["final"].items():
        lines = _lines(output)
        assert len(lines) > 8 * ROUNDS, service
        for line in lines:
            entry = json.loads(line)  # raises on anything else: a traceback, a print, the server's own format
            assert isinstance(entry, dict), line
        entries = [json.loads(line) for line in lines]
        assert {"info", "warning"} <= {e["level"] for e in entries}, service  # the outage logged warnings
        # The warning logged while serving a request carries that request's id, as its access line does.
        outage = {e["logger"]: e for e in entries if e.get("request_id") == OUTAGE_ID}
        assert "database unavailable" in outage["atlas.errors"]["message"], service
        assert outage["atlas.access"]["status"] == 503
        # Lines logged outside any request (the server starting and stopping) have none.
        assert not any("request_id" in e for e in entries if e["logger"].startswith("_granian"))


# -- the release's pods, as the chart renders them ------------------------------------------------

_POD_TEMPLATE = {
    "Deployment": lambda d: d["spec"]["template"],
    "StatefulSet": lambda d: d["spec"]["template"],
    "CronJob": lambda d: d["spec"]["jobTemplate"]["spec"]["template"],
    "Pod": lambda d: d,  # helm test pods
}


def _chart_pods() -> list[tuple[str, dict]]:
    """(owner name, pod template) for every pod the chart makes, backups and helm test included."""
    manifests = chart.render({"users.postgresql.backup.enabled": True, "projects.postgresql.backup.enabled": True})
    return [
        (doc["metadata"]["name"], _POD_TEMPLATE[doc["kind"]](doc)) for doc in manifests if doc["kind"] in _POD_TEMPLATE
    ]


def _targets(rollout: int) -> list[dict[str, str]]:
    """discovery.kubernetes' targets for one rollout of every pod: new pod names and uids each time."""
    targets = []
    for owner, pod in _chart_pods():
        for replica in range(2):
            name = f"{owner}-{rollout:x}{uuid.uuid4().hex[:6]}-{replica}"
            targets += pod_targets(chart.NAMESPACE, name, str(uuid.uuid4()), pod["metadata"]["labels"], pod["spec"])
    return targets


def _service_target(pipeline: Pipeline, targets: list[dict[str, str]], service: str) -> dict[str, str]:
    """The target of a service's own container (not its migrate init container) in one rollout."""
    return next(
        t
        for t in targets
        if t["__meta_kubernetes_pod_label_app_kubernetes_io_component"] == service
        and t["__meta_kubernetes_pod_container_name"] == service
        and pipeline.discovers(t)
    )


def streams(pipeline: Pipeline, output: dict[str, str], postgres: str, rollouts: int = 1) -> set[tuple]:
    """The distinct stream label sets Loki would get for these lines, over this many rollouts: each
    service's lines from each of its pods, the PostgreSQL lines from each database pod, and one line
    from every other container the chart runs."""
    found: set[tuple] = set()
    for rollout in range(rollouts):
        targets = [t for t in _targets(rollout) if pipeline.discovers(t)]
        assert targets, "the config's discovery selects none of the chart's pods"
        for target in targets:
            component = target["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
            container = target["__meta_kubernetes_pod_container_name"]
            if (component, container) in {(s, s) for s in output}:
                lines = _lines(output[component])
            elif container == "postgresql":
                lines = _lines(postgres)
            else:
                lines = ["a line from " + container]
            found |= {tuple(sorted(pipeline.entry(target, line).labels.items())) for line in lines}
    return found


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return Pipeline(alloy_config.components())


def assert_bounded(pipeline: Pipeline, run) -> set[tuple]:
    """The check itself: streams depend on where a line comes from, never on the traffic or the pods."""
    containers = {
        (pod["metadata"]["labels"]["app.kubernetes.io/component"], c["name"])
        for _, pod in _chart_pods()
        for c in pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
    }
    few = streams(pipeline, run["first"], run["postgres"])
    many = streams(pipeline, run["final"], run["postgres"], rollouts=3)
    assert many == few, f"more traffic or new pods made new streams: {sorted(many - few)[:5]}"
    # At most one stream per container the chart runs: a label that varies within a container's lines
    # (a level, a path, a request id) breaks this.
    assert len(many) <= len(containers), sorted(many)[:10]
    per_service: dict[str, int] = {}
    for labels in many:
        service = dict(labels).get("service_name", "")
        per_service[service] = per_service.get(service, 0) + 1
    assert max(per_service.values()) <= 3, per_service  # the service, its migrate, at most one more
    return many


def test_streams_stay_few_whatever_the_traffic(pipeline, run):
    found = assert_bounded(pipeline, run)
    by_source = {(d["service_name"], d["container"]) for d in map(dict, found)}
    assert {
        ("users", "users"),
        ("users", "migrate"),
        ("projects", "projects"),
        ("users-postgresql", "postgresql"),
    } <= by_source
    assert {dict(labels)["namespace"] for labels in found} == {chart.NAMESPACE}


STAGES_TO_PROMOTE = (("stage.json", "expressions"), ("stage.labels", "values"))


# level too: bounded (five values), but it splits each container's few lines into up to five streams,
# which Loki's label best practices advise against; it is structured metadata instead (docs/logs.md).
@pytest.mark.parametrize(
    "promoted",
    ['request_id = ""', 'path = ""', 'pid = ""', 'ts = ""', 'message = ""', 'status = ""', 'level = ""'],
)
def test_the_check_fails_when_a_per_request_field_becomes_a_label(run, promoted):
    """The same check on the config with one more label from the line: it must fail (status too: with
    the service's few endpoints it is bounded, but it still splits each container's stream)."""
    with open(alloy_config.TEMPLATE) as fh:
        source = fh.read()
    name = promoted.split()[0]
    # Extracted from the line first (stage.labels only reads extracted values), then a label, kept.
    promote = "\n\n  ".join(f"{stage} {{\n    {arg} = {{ {promoted} }}\n  }}" for stage, arg in STAGES_TO_PROMOTE)
    source = source.replace("stage.label_keep {", promote + "\n\n  stage.label_keep {")
    source = source.replace(
        'values = ["namespace", "service_name", "container"]',
        f'values = ["namespace", "service_name", "container", "{name}"]',
    )
    mutated = Pipeline(alloy_config.components(source=source))
    with pytest.raises(AssertionError):
        assert_bounded(mutated, run)


def test_a_line_keeps_everything_it_said(pipeline, run):
    """Only labels are chosen: the line reaches Loki as written, request id and path included, and
    level, logger and pod are structured metadata (queryable without parsing)."""
    targets = _targets(0)
    target = _service_target(pipeline, targets, "users")
    line = next(line for line in _lines(run["final"]["users"]) if '"status":404' in line)
    entry = pipeline.entry(target, line)
    assert set(entry.structured_metadata) == {"level", "logger", "pod"}
    assert entry.structured_metadata["pod"] == target["__meta_kubernetes_pod_name"]
    assert entry.structured_metadata["logger"] == "atlas.access"
    assert not set(entry.labels) & set(json.loads(line))  # no field of the line is a label


def test_the_documented_fields_are_the_fields_written(run):
    """docs/logs.md's field table against every line both services wrote: nothing undocumented, and each
    field where the table says it is."""
    fields = {name: cells[0] for name, cells in table("fields").items()}
    entries = [json.loads(line) for output in run["final"].values() for line in _lines(output)]
    access = [e for e in entries if e["logger"] == "atlas.access"]
    seen = {key for e in entries for key in e}
    assert seen <= set(fields), f"written but not in docs/logs.md: {sorted(seen - set(fields))}"
    for name, on in fields.items():
        if on == "every line":
            assert all(name in e for e in entries), name
        elif on == "`atlas.access` lines":
            assert all(name in e for e in access), name
            assert all(name not in e for e in entries if e["logger"] != "atlas.access"), name
        elif on == "lines logged while serving a request":
            assert all(name in e for e in access) and any(name in e for e in entries if e not in access), name
        else:
            assert on == "optional", f"{name}: unknown place {on!r}"
    assert {name for name, on in fields.items() if on != "optional"} <= seen
