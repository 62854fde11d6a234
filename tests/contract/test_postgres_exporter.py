"""The rendered postgres_exporter sidecar, run as the kubelet would run it beside the chart's own PostgreSQL,
serves pg_up 1 and the database's statistics; pg_up 0 when the password no longer opens the database or the
database is stopped.

What runs, and how (tests/support/contract.py, sandbox.py):
- the database is the chart's own: the rendered StatefulSet's ``postgresql`` container in the sandbox, started
  by the emulated postgres image entrypoint (uid 70, the Secret's password file, scram-sha-256 over TCP);
- the exporter is the same pod's ``metrics`` container, in the same sandboxed pod (the same Secret volume, laid
  out as the kubelet lays it out, mode 0440 group 70 through fsGroup), as the rendered user (65534) with the
  pod's fsGroup, no capabilities, a read-only root; its args and env as rendered, resolved as the kubelet does.

Stand-in: Debian's prometheus-postgres-exporter 0.11.1 (/usr/bin/prometheus-postgres-exporter, package
prometheus-postgres-exporter) for the image's /bin/postgres_exporter of
quay.io/prometheuscommunity/postgres-exporter:v0.20.1 (its Dockerfile at prometheus-community/postgres_exporter
v0.20.1: ENTRYPOINT /bin/postgres_exporter, USER nobody). Both read DATA_SOURCE_URI, DATA_SOURCE_USER and
DATA_SOURCE_PASS_FILE the same way (v0.11.1 cmd/postgres_exporter/datasource.go getDataSources, v0.20.1
exporter/datasource.go GetDataSources) and take --web.listen-address and --web.telemetry-path. Where they
differ, and what this test therefore does not prove for v0.20.1:
- PG_EXPORTER_WEB_LISTEN_ADDRESS is read by 0.11.1 only (v0.20.1's listen flag comes from exporter-toolkit and
  has no variable): the chart passes the flag, so both listen where it says;
- pg_stat_activity_count has the labels datname and state in 0.11.1 and, from v0.20.0's standalone
  stat_activity collector, also usename, application_name, backend_type, wait_event_type, wait_event (and
  excludes the exporter's own session): the assertions sum over whatever labels there are.

Translated, because there is no cluster network here (each checked against the rendered value first):
- ``--web.listen-address=:9187`` -> ``127.0.0.1:<free port>`` (no pod network namespace: the host's loopback);
- ``DATA_SOURCE_URI=127.0.0.1:5432/...`` -> the port the database listens on here (the StatefulSet's server
  listens on a free loopback port, see contract.chart_database).
Not as in the image: the emulated entrypoint is run with --loopback-clients-are-remote (pg_entrypoint.py), so
loopback logins need the password. The official image's initdb trusts loopback TCP, so in a real pod the
exporter's loopback login is let in whatever the password: the wrong-password case holds where pg_hba.conf
asks loopback clients for a password, not with the image's defaults - the last test shows the image's case.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import urllib.error
import urllib.request

import psycopg2
import pytest
from prometheus_client.parser import text_string_to_metric_families
from psycopg2 import sql

from tests.support import contract
from tests.support import sandbox as sb
from tests.support.chart import find, render
from tests.support.contract import chart_database, container_argv, resolve_env
from tests.support.net import free_port
from tests.support.postgres import wait_until

EXPORTER_BINARY = "/usr/bin/prometheus-postgres-exporter"
REASON = sb.unavailable_reason()
pytestmark = [
    pytest.mark.skipif(REASON is not None, reason=f"the sandbox cannot run here: {REASON}"),
    pytest.mark.skipif(
        not os.access(EXPORTER_BINARY, os.X_OK), reason="prometheus-postgres-exporter not installed (make setup)"
    ),
]

# Characters the exporter must escape into the postgresql:// URL it builds (url.UserPassword).
AWKWARD = "p@ss:w/rd?#%x"
VALUES = {
    "projects.enabled": False,
    "users.postgresql.auth.database": "atlas_users",  # != the role: a lost database name cannot pass by default
    "users.postgresql.auth.password": AWKWARD,
    "users.postgresql.metrics.enabled": True,
}
STATEFULSET = "atlas-users-postgresql"
CONTAINER_PORT = 9187


def exporter_image() -> sb.Image:
    """quay.io/prometheuscommunity/postgres-exporter:v0.20.1, Debian's 0.11.1 binary as /bin/postgres_exporter."""
    return sb.Image(
        name="quay.io/prometheuscommunity/postgres-exporter:v0.20.1 (stand-in: Debian's 0.11.1)",
        env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
        uid=65534,
        gid=65534,
        entrypoint=(EXPORTER_BINARY,),
    )


@pytest.fixture(scope="module")
def manifests() -> list[dict]:
    return render(VALUES)


def sidecar(manifests: list[dict]) -> dict:
    spec = find(manifests, "StatefulSet", STATEFULSET)["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "metrics"]
    return container


@pytest.fixture
def db(manifests):
    """A fresh chart database per test: one test stops it, another changes its password."""
    with chart_database(manifests, find(manifests, "StatefulSet", STATEFULSET)) as running:
        assert running.spec.password == AWKWARD
        yield running


class Exporter:
    def __init__(self, running: sb.Running, port: int, env: dict[str, str]) -> None:
        self.running, self.port, self.env = running, port, env

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def samples(self) -> list:
        status, text = self.get("/metrics")
        assert status == 200, text[-2000:]
        return [s for family in text_string_to_metric_families(text) for s in family.samples]

    def value(self, name: str, **labels: str) -> float:
        """The sum of the samples of ``name`` whose labels include ``labels`` (fails when there is none)."""
        found = [s.value for s in self.samples() if s.name == name and labels.items() <= s.labels.items()]
        assert found, f"no {name}{labels} in /metrics:\n{self.running.logs()}"
        return sum(found)


@contextlib.contextmanager
def exporter(manifests: list[dict], db) -> Exporter:
    """The rendered sidecar in the database's sandboxed pod, until its liveness path answers 200."""
    container = sidecar(manifests)
    image = exporter_image()
    argv = container_argv(container, image)
    env = {**image.env, **resolve_env(manifests, container, {})}
    # The translations (see the module docstring), each after checking the rendered value.
    port = free_port()
    listen = f"--web.listen-address=:{CONTAINER_PORT}"
    assert listen in argv, argv
    argv[argv.index(listen)] = f"--web.listen-address=127.0.0.1:{port}"
    assert env["DATA_SOURCE_URI"].startswith("127.0.0.1:5432/"), env["DATA_SOURCE_URI"]
    env["DATA_SOURCE_URI"] = env["DATA_SOURCE_URI"].replace(":5432/", f":{db.port}/", 1)
    running = db.pod.container(container, image).start(argv, env)
    try:
        probe = container["livenessProbe"]
        assert probe["httpGet"]["path"] == "/"
        started = Exporter(running, port, env)

        def answers() -> bool:
            if running.poll() is not None:
                raise AssertionError(f"the exporter exited: {running.exit_description()}\n{running.logs()}")
            with contextlib.suppress(OSError):
                return started.get("/")[0] == 200
            return False

        # Within the liveness budget: after it the kubelet would restart the container.
        wait_until(answers, timeout=probe["periodSeconds"] * probe["failureThreshold"], interval=0.1)
        yield started
    finally:
        running.stop(grace=30)


def _connect(db, password: str | None = None):
    conn = psycopg2.connect(
        host=db.host, port=db.port, user=db.spec.user, password=password or db.spec.password, dbname=db.spec.database
    )
    conn.autocommit = True
    return conn


def test_the_rendered_sidecar_reads_the_password_from_the_secret_file_only(manifests) -> None:
    container = sidecar(manifests)
    env = {e["name"]: e for e in container["env"]}
    assert set(env) == {"DATA_SOURCE_URI", "DATA_SOURCE_USER", "DATA_SOURCE_PASS_FILE"}
    assert AWKWARD not in str(container), "the password appears in the container spec"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert env["DATA_SOURCE_PASS_FILE"]["value"] == f"{mounts['password']}/password"


def test_exporter_reports_pg_up_1_and_the_database_statistics(manifests, db) -> None:
    idle = [_connect(db) for _ in range(3)]  # as a service's pooled connections: idle in its database
    try:
        with exporter(manifests, db) as ex:
            assert ex.value("pg_up") == 1.0, ex.running.logs()
            with idle[0].cursor() as cur:
                cur.execute("SHOW max_connections")
                (max_connections,) = cur.fetchone()
            assert ex.value("pg_settings_max_connections") == float(max_connections)
            assert ex.value("pg_stat_activity_count", datname="atlas_users", state="idle") >= 3
            # As the rendered user, with the pod's fsGroup (that is how it reads the 0440 password file).
            status = ex.running.status()
            assert status["Uid"][0] == 65534 and 70 in status["Groups"], status
            with open(f"/proc/{ex.running.pid}/environ", "rb") as f:
                assert AWKWARD.encode() not in f.read(), "the password is in the exporter's environment"
    finally:
        for conn in idle:
            conn.close()


def test_pg_up_0_when_the_password_no_longer_opens_the_database(manifests, db) -> None:
    """The Secret keeps the old password while the role's changed (a rotation half done)."""
    with _connect(db) as conn, conn.cursor() as cur:
        cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(db.spec.user)), ("rotated-elsewhere",))
    with exporter(manifests, db) as ex:
        assert ex.value("pg_up") == 0.0, ex.running.logs()
        assert ex.running.poll() is None, "the exporter must keep serving (pg_up 0), not exit"
        assert ex.get("/")[0] == 200, "the liveness path must answer: restarting the exporter would not help"


def test_pg_up_0_when_the_database_stops_and_1_again_for_a_new_one_never_exiting(manifests, db) -> None:
    with exporter(manifests, db) as ex:
        assert ex.value("pg_up") == 1.0, ex.running.logs()
        db.running.stop(grace=60)
        deadline = time.monotonic() + 30
        while ex.value("pg_up") != 0.0:
            assert time.monotonic() < deadline, f"pg_up stayed 1 after the database stopped:\n{ex.running.logs()}"
            time.sleep(0.5)
        assert ex.running.poll() is None, "the exporter must keep serving (pg_up 0), not exit"
        assert ex.get("/")[0] == 200


def test_with_the_images_own_pg_hba_loopback_is_trusted_so_a_wrong_password_still_gets_in(
    manifests, monkeypatch
) -> None:
    """What a real pod does (pg_entrypoint.py without --loopback-clients-are-remote: initdb's default pg_hba.conf
    trusts 127.0.0.1): the exporter is in whatever the password. Its password is the Secret's all the same,
    so it keeps working if the image's pg_hba.conf is ever tightened."""
    image = contract.postgres_image()
    entrypoint = tuple(a for a in image.entrypoint if a != "--loopback-clients-are-remote")
    trusting = dataclasses.replace(image, entrypoint=entrypoint)
    assert trusting.entrypoint != image.entrypoint
    monkeypatch.setattr(contract, "postgres_image", lambda: trusting)
    with chart_database(manifests, find(manifests, "StatefulSet", STATEFULSET)) as db:
        with _connect(db) as conn, conn.cursor() as cur:
            cur.execute(
                sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(db.spec.user)), ("rotated-elsewhere",)
            )
        with exporter(manifests, db) as ex:
            assert ex.value("pg_up") == 1.0, ex.running.logs()
