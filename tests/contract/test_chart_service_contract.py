"""The rendered chart and the real services agree: each rendered Deployment's commands, environment,
port and probe paths run locally against PostgreSQL (tests/support/contract.py), and drift on either
side fails. The containers run as the pod would (tests/support/sandbox.py): the running processes are
checked against the rendered securityContext, and the chart's own PostgreSQL serves the services."""

from __future__ import annotations

import copy
import importlib.util

import pytest

from tests.support import sandbox as sb
from tests.support.chart import find, render
from tests.support.contract import ContractError, ContractResult, run_contract, service_contract

# The services live in services/ (installed into .venv by `make setup`); without them there is no contract.
pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(p) for p in ("atlas_common", "users", "projects")),
    reason="service packages not importable (make setup installs services/*)",
)

# database != username, so a lost PGDATABASE cannot pass by libpq's default (database = user).
DISTINCT_DB = {"users.postgresql.auth.database": "atlas_users", "projects.postgresql.auth.database": "atlas_projects"}


def _assert_ran_as_rendered(workload: dict, container_name: str, result: ContractResult) -> None:
    """The process the container ran, seen in /proc while it served, is what the securityContext renders."""
    pod = workload["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == container_name)
    pod_ctx, ctx = pod["securityContext"], container["securityContext"]
    status = result.status[container_name]
    assert status["Uid"] == [ctx.get("runAsUser", pod_ctx["runAsUser"])] * 4, status  # real, effective, saved, fs
    assert status["Gid"] == [ctx.get("runAsGroup", pod_ctx["runAsGroup"])] * 4, status
    assert pod_ctx["fsGroup"] in status["Groups"], status
    assert ctx["capabilities"]["drop"] == ["ALL"]
    assert [status[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")] == [0] * 5, status
    assert ctx["allowPrivilegeEscalation"] is False and status["NoNewPrivs"] == 1, status
    assert ctx["readOnlyRootFilesystem"] is True
    writable = sorted(m["mountPath"] for m in container.get("volumeMounts", []) if not m.get("readOnly"))
    assert result.writable[container_name] == writable, "only the pod's writable volumes are writable"
    limit = sb.memory_bytes(container["resources"]["limits"]["memory"])
    assert result.memory_peak.get(container_name, 0) < limit


@pytest.mark.parametrize("service", ["users", "projects"])
def test_rendered_service_runs_migrates_and_answers_its_probes(postgres_server, service: str) -> None:
    manifests = render(DISTINCT_DB)
    result = run_contract(manifests, service, postgres_server)
    assert result.probe_status == {"startup": 200, "liveness": 200, "readiness": 200}
    assert len(result.migrate_seconds) == 2  # applied, then idempotent
    assert '"connected": true' in result.smoke_output  # the helm test pod's own check passed
    assert result.sandboxed is (sb.unavailable_reason() is None), "sandboxed wherever the machine allows it"
    if result.sandboxed:
        _assert_ran_as_rendered(find(manifests, "Deployment", f"atlas-{service}"), service, result)
        assert result.writable[service] == ["/tmp"]  # docs/interfaces.md: /tmp is the services' only writable path
        assert result.status[service]["Uid"][0] == 10001
        _assert_ran_as_rendered(find(manifests, "StatefulSet", f"atlas-{service}-postgresql"), "postgresql", result)
        assert result.status["postgresql"]["Uid"][0] == 70  # the Alpine image's postgres user
    migrate = ", ".join(f"{s:.2f}s" for s in result.migrate_seconds)
    print(
        f"{service}: database {result.database_startup_seconds or 0:.2f}s, migrate {migrate}, "
        f"startup {result.startup_seconds:.2f}s, stop {result.stop_seconds:.2f}s, "
        f"memory peak {result.memory_peak}, notes {result.notes}"
    )


def test_without_the_sandbox_the_contract_still_runs_and_says_so(postgres_server) -> None:
    """The path of machines that cannot sandbox (not root): the old unsandboxed run, never silently."""
    with pytest.warns(UserWarning, match="NOT sandboxed"):
        result = run_contract(render(DISTINCT_DB), "users", postgres_server, sandbox=False)
    assert result.sandboxed is False
    assert result.probe_status == {"startup": 200, "liveness": 200, "readiness": 200}
    assert '"connected": true' in result.smoke_output
    assert any("NOT sandboxed" in note for note in result.notes), result.notes


def test_projects_only_and_existing_secret_shapes(postgres_server) -> None:
    """The playbooks' path: existingSecret (not rendered, given here) and projects without users."""
    manifests = render({"users.enabled": False, "projects.postgresql.auth.existingSecret": "atlas-projects-db"})
    assert "USERS_SERVICE_URL" not in find(manifests, "ConfigMap", "atlas-projects")["data"]
    result = run_contract(
        manifests, "projects", postgres_server, secrets={"atlas-projects-db": {"password": "from-the-playbooks"}}
    )
    assert result.probe_status["readiness"] == 200


def test_external_database_shape(postgres_server) -> None:
    manifests = render(
        {
            "projects.enabled": False,
            "users.postgresql.enabled": False,
            "users.externalDatabase.host": "db.example.test",
            "users.externalDatabase.existingSecret": "ext",
            "users.externalDatabase.database": "ext_users",
        }
    )
    result = run_contract(manifests, "users", postgres_server, secrets={"ext": {"password": "ext-pass"}})
    assert result.probe_status["liveness"] == 200


# -- drift on either side fails ------------------------------------------------------------------


def _mutated(mutate) -> list[dict]:
    manifests = copy.deepcopy(render(DISTINCT_DB))
    mutate(manifests)
    return manifests


def _users_container(manifests: list[dict], init: bool = False) -> dict:
    spec = find(manifests, "Deployment", "atlas-users")["spec"]["template"]["spec"]
    return spec["initContainers"][0] if init else spec["containers"][0]


def _rename_config(old: str, new: str):
    def mutate(manifests: list[dict]) -> None:
        data = find(manifests, "ConfigMap", "atlas-users")["data"]
        data[new] = data.pop(old)

    return mutate


def _set_probe_path(kind: str, path: str):
    def mutate(manifests: list[dict]) -> None:
        _users_container(manifests)[kind]["httpGet"]["path"] = path

    return mutate


def _rename_password_env(manifests: list[dict]) -> None:
    for init in (False, True):
        _users_container(manifests, init)["env"][0]["name"] = "PG_PASSWORD"


def _set_command(index: int, value: str, init: bool = False):
    def mutate(manifests: list[dict]) -> None:
        _users_container(manifests, init)["command"][index] = value

    return mutate


def _set_config(key: str, value: str):
    def mutate(manifests: list[dict]) -> None:
        find(manifests, "ConfigMap", "atlas-users")["data"][key] = value

    return mutate


# Enough for a sandboxed gunicorn to start, or to fail and exit, on a loaded 2-core machine.
DRIFT_STARTUP_TIMEOUT = 20

DRIFTS = {
    "renamed-PGDATABASE": (_rename_config("PGDATABASE", "PG_DATABASE"), "exited"),
    "renamed-PGPASSWORD": (_rename_password_env, "migration"),
    "readiness-path": (_set_probe_path("readinessProbe", "/ready"), "probes not 200"),
    "liveness-path": (_set_probe_path("livenessProbe", "/healthz"), "probes not 200"),
    "startup-path": (
        _set_probe_path("startupProbe", "/started"),
        f"startup probe /started not 200 within {DRIFT_STARTUP_TIMEOUT}",
    ),
    "wsgi-module": (_set_command(3, "users.app:application"), "exited"),
    "migrate-subcommand": (_set_command(3, "upgrade", init=True), "migration"),
    "bind-port": (_set_config("ATLAS_BIND", "0.0.0.0:8081"), "container port 8080"),
    "invalid-pool-size": (_set_config("ATLAS_DB_POOL_SIZE", "lots"), "ATLAS_DB_POOL_SIZE"),
}


@pytest.mark.parametrize(("mutate", "message"), DRIFTS.values(), ids=DRIFTS.keys())
def test_drift_breaks_the_contract(postgres_server, mutate, message: str) -> None:
    with pytest.raises(ContractError) as err:
        # A broken startup path would otherwise wait out the probe's whole 60 s budget.
        run_contract(_mutated(mutate), "users", postgres_server, smoke=False, startup_timeout=DRIFT_STARTUP_TIMEOUT)
    assert message in str(err.value)


def test_database_drift_inside_the_chart_is_caught() -> None:
    """The service's PGPORT must be a port of the database Service the chart renders."""

    def mutate(manifests: list[dict]) -> None:
        find(manifests, "ConfigMap", "atlas-users")["data"]["PGPORT"] = "5433"

    with pytest.raises(ContractError, match="PGPORT 5433 is not a port of Service atlas-users-postgresql"):
        service_contract(_mutated(mutate), "users")
