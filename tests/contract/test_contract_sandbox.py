"""The contract runs the rendered containers as the pod would (tests/support/contract.py + sandbox.py).

The harness can fail: take a writable mount away from the rendered pods and the run fails, naming the
container and the path it could not write. The chart's PostgreSQL is what the official image makes of the
StatefulSet (uid 70, the superuser and database from the env, the password from the mounted secret file,
scram-sha-256 over TCP, its socket and data only in the rendered volumes). The memory limit is the
rendered one. The image the sandbox stands in for the services is the one the Dockerfiles describe.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import re
import sys

import psycopg2
import pytest

from tests.support import sandbox as sb
from tests.support.chart import find, render
from tests.support.contract import (
    ContractError,
    chart_database,
    dockerfile_runtime,
    run_contract,
    service_dockerfile,
    service_image,
)

REASON = sb.unavailable_reason()
pytestmark = [
    pytest.mark.skipif(REASON is not None, reason=f"the sandbox cannot run here: {REASON}"),
    pytest.mark.skipif(
        not all(importlib.util.find_spec(p) for p in ("atlas_common", "users", "projects")),
        reason="service packages not importable (make setup installs services/*)",
    ),
]
CGROUP, CGROUP_NOTE = sb.memory_cgroup_parent() if REASON is None else (None, "no sandbox")

DISTINCT_DB = {"users.postgresql.auth.database": "atlas_users", "projects.postgresql.auth.database": "atlas_projects"}


def _mutated(mutate, values=DISTINCT_DB) -> list[dict]:
    manifests = copy.deepcopy(render(values))
    mutate(manifests)
    return manifests


def _users_pod(manifests: list[dict]) -> dict:
    return find(manifests, "Deployment", "atlas-users")["spec"]["template"]["spec"]


def _users_db_pod(manifests: list[dict]) -> dict:
    return find(manifests, "StatefulSet", "atlas-users-postgresql")["spec"]["template"]["spec"]


def _run_users(manifests: list[dict]) -> None:
    run_contract(manifests, "users", smoke=False, startup_timeout=20, sandbox=True)


# -- a path the process must write that the chart does not mount writable fails the run ---------


def _drop_tmp(manifests: list[dict]) -> None:
    (main,) = _users_pod(manifests)["containers"]
    main["volumeMounts"] = [m for m in main["volumeMounts"] if m["mountPath"] != "/tmp"]


def _tmp_read_only(manifests: list[dict]) -> None:
    (main,) = _users_pod(manifests)["containers"]
    next(m for m in main["volumeMounts"] if m["mountPath"] == "/tmp")["readOnly"] = True


@pytest.mark.parametrize("mutate", [_drop_tmp, _tmp_read_only], ids=["tmp-mount-removed", "tmp-mount-readonly"])
def test_service_without_a_writable_tmp_fails_naming_container_and_path(mutate) -> None:
    with pytest.raises(ContractError) as err:
        _run_users(_mutated(mutate))
    message = str(err.value)
    # gunicorn's config imports the metrics module, which makes the Prometheus multiprocess dir first.
    assert (
        "container users (pod atlas-users-sandbox) could not write /tmp/atlas-metrics (Read-only file system)"
        in message
    ), message
    assert "its writable volumes: none" in message


def test_database_without_its_run_volume_fails_naming_container_and_path() -> None:
    def drop_run(manifests: list[dict]) -> None:
        (pg,) = _users_db_pod(manifests)["containers"]
        pg["volumeMounts"] = [m for m in pg["volumeMounts"] if m["name"] != "run"]

    with pytest.raises(ContractError) as err:
        _run_users(_mutated(drop_run))
    message = str(err.value)
    assert "database container postgresql (pod atlas-users-postgresql-0)" in message, message
    assert re.search(
        r"container postgresql \(pod atlas-users-postgresql-0\) could not write "
        r"/var/run/postgresql/\.s\.PGSQL\.\d+\.lock \(Read-only file system\)",
        message,
    ), message


def test_database_must_run_as_the_images_postgres_user() -> None:
    """initdb needs getpwuid: the image's /etc/passwd names uid 70 only (the chart's atlas.postgresqlUid)."""

    def other_uid(manifests: list[dict]) -> None:
        _users_db_pod(manifests)["securityContext"].update(runAsUser=10001, runAsGroup=10001, fsGroup=10001)

    with pytest.raises(ContractError, match="could not look up effective user ID 10001"):
        _run_users(_mutated(other_uid))


def test_database_reads_its_password_file_through_fsgroup() -> None:
    """The secret file is 0440 root:<fsGroup>: without fsGroup uid 70 cannot read it."""

    def no_fs_group(manifests: list[dict]) -> None:
        _users_db_pod(manifests)["securityContext"].pop("fsGroup")

    with pytest.raises(ContractError, match=r"was denied access to /run/secrets/postgresql/password"):
        _run_users(_mutated(no_fs_group))


@pytest.mark.skipif(CGROUP is None, reason=f"memory limits not enforceable here: {CGROUP_NOTE}")
def test_the_rendered_memory_limit_is_the_one_enforced() -> None:
    def tiny_limit(manifests: list[dict]) -> None:
        (main,) = _users_pod(manifests)["containers"]
        main["resources"]["limits"]["memory"] = "24Mi"

    with pytest.raises(ContractError, match=rf"was OOM-killed at its memory limit \({24 * 2**20} bytes\)"):
        _run_users(_mutated(tiny_limit))


# -- the chart's PostgreSQL is what the official image makes of the StatefulSet --------------------


@pytest.mark.parametrize("persistence", [True, False], ids=["pvc", "ephemeral-emptydir"])
def test_chart_database_is_what_the_image_makes_of_the_statefulset(persistence: bool) -> None:
    values = {**DISTINCT_DB, "users.postgresql.persistence.enabled": persistence, "projects.enabled": False}
    manifests = render(values)
    sts = find(manifests, "StatefulSet", "atlas-users-postgresql")
    (pg,) = sts["spec"]["template"]["spec"]["containers"]
    pod_ctx = sts["spec"]["template"]["spec"]["securityContext"]
    env = {e["name"]: e.get("value") for e in pg["env"]}
    with chart_database(manifests, sts) as db:
        assert (
            (db.spec.user, db.spec.database) == (env["POSTGRES_USER"], env["POSTGRES_DB"]) == ("users", "atlas_users")
        )
        conn = psycopg2.connect(
            host=db.host, port=db.port, user=db.spec.user, password=db.spec.password, dbname=db.spec.database
        )
        with conn, conn.cursor() as cur:
            cur.execute("SELECT rolname FROM pg_roles WHERE rolsuper")
            assert cur.fetchall() == [("users",)], "POSTGRES_USER is the superuser (and there is no postgres role)"
            cur.execute(
                "SELECT address, auth_method FROM pg_hba_file_rules WHERE type = 'host' AND 'all' = ANY(database)"
            )
            rules = cur.fetchall()
            assert rules[-1] == ("all", "scram-sha-256"), "the image's line for every other address"
            assert {method for _, method in rules} == {"scram-sha-256"}
            cur.execute("SHOW data_directory")
            assert cur.fetchone() == (env["PGDATA"],)
        conn.close()
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            psycopg2.connect(host=db.host, port=db.port, user="users", password="wrong", dbname="atlas_users")

        # The process, as the pod runs it.
        assert db.status["Uid"] == [pod_ctx["runAsUser"]] * 4 == [70] * 4
        assert db.status["Gid"] == [pod_ctx["runAsGroup"]] * 4
        assert db.status["CapEff"] == 0 and db.status["CapBnd"] == 0 and db.status["NoNewPrivs"] == 1
        assert db.status["cmdline"][:1] == ["postgres"], "the entrypoint exec'd the server"
        assert db.writable == sorted(m["mountPath"] for m in pg["volumeMounts"] if not m.get("readOnly"))

        # What it wrote, and where: only in the rendered volumes.
        run = db.pod.volume_path("run")
        assert f".s.PGSQL.{db.port}" in os.listdir(run), "the socket is in the rendered /var/run/postgresql"
        data = db.pod.volume_path("data")
        assert sorted(os.listdir(data)) == (["lost+found", "pgdata"] if persistence else ["pgdata"])
        pgdata = os.stat(os.path.join(data, "pgdata"))
        assert (oct(pgdata.st_mode & 0o7777), pgdata.st_uid) == ("0o700", 70)
        secret = os.stat(os.path.join(db.pod.volume_path("password"), "..data", "password"))
        assert (oct(secret.st_mode & 0o7777), secret.st_uid, secret.st_gid) == ("0o440", 0, pod_ctx["fsGroup"])
    assert db.memory_peak is None or db.memory_peak < sb.memory_bytes(pg["resources"]["limits"]["memory"])


# -- the image the sandbox stands in for the services ---------------------------------------------


@pytest.mark.parametrize("service", ["users", "projects"])
def test_the_service_image_stand_in_is_what_its_dockerfile_builds(service: str) -> None:
    """ENV and USER come from the recipe itself; what the chart and the sandbox rely on is checked here."""
    dockerfile = service_dockerfile(service)
    assert dockerfile is not None, f"no Dockerfile builds atlas/{service}"
    env, user = dockerfile_runtime(dockerfile, {"SERVICE": service})
    assert env["PATH"].split(":")[0] == "/opt/venv/bin", "the venv's executables come first (python, gunicorn)"
    assert env["HOME"] == "/tmp", "HOME on the one writable path"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1", "no .pyc writes on a read-only root"
    deployment = find(render(DISTINCT_DB), "Deployment", f"atlas-{service}")
    pod_ctx = deployment["spec"]["template"]["spec"]["securityContext"]
    assert user == f"{pod_ctx['runAsUser']}:{pod_ctx['runAsGroup']}", "the image's USER is the chart's runAsUser"
    image = service_image(service)
    assert image.env["PATH"].split(":")[0] == os.path.dirname(sys.executable), "/opt/venv is this checkout's venv"
    assert {k: v for k, v in image.env.items() if k != "PATH"} == {k: v for k, v in env.items() if k != "PATH"}
    assert (image.uid, image.gid) == (pod_ctx["runAsUser"], pod_ctx["runAsGroup"])
