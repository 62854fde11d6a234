"""The rendered backup job's command and environment, run against a real PostgreSQL, produce a dump; that
dump restores into a fresh database with identical rows; retention keeps the newest ``keep``; a failing
run exits non-zero and deletes nothing.

What runs, and how (tests/support/contract.py, sandbox.py):
- the database is the chart's own: the rendered StatefulSet's container in the sandbox, started by the
  emulated postgres image entrypoint (uid 70, its Secret's password file, scram-sha-256 over TCP);
- its schema is the service's own migrations: the rendered Deployment's ``migrate`` init container
  (``python -m users migrate``) in the sandbox, then rows are inserted over SQL as the service's role;
- the job is the rendered CronJob's jobTemplate pod: its one container in the sandbox as the kubelet
  would run it (uid 70, fsGroup 70, no capabilities, read-only root), its volumes as the kubelet sets
  them up (the claim as a freshly formatted volume, the Secret's password file, the memory-backed /tmp),
  its command as rendered (``sh -c <files/backup.sh> backup.sh``), its environment as rendered. Only
  PGHOST and PGPORT are rewritten, to the database's loopback address (after checking they name the
  database's Service and port): there is no cluster DNS here.
- the restore is the operator's: this host's pg_restore into a fresh database of the same server.

Stand-ins (as everywhere in the contract): Debian's PostgreSQL binaries for the image's (pg_dump and
the server are of one major version, as in the image), the host's dash and coreutils for the image's
busybox (the script keeps to POSIX sh for both).
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import math
import os
import re
import secrets
import subprocess
import time
from dataclasses import dataclass, field

import psycopg2
import pytest
from psycopg2 import sql

from tests.support import sandbox as sb
from tests.support.chart import find, render
from tests.support.contract import chart_database, container_argv, image_for, resolve_env, service_contract
from tests.support.postgres import _bindir, wait_until

REASON = sb.unavailable_reason()
pytestmark = [
    pytest.mark.skipif(REASON is not None, reason=f"the sandbox cannot run here: {REASON}"),
    pytest.mark.skipif(
        not all(importlib.util.find_spec(p) for p in ("atlas_common", "users")),
        reason="service packages not importable (make setup installs services/*)",
    ),
]

KEEP = 3
# A password libpq's pgpass format must escape (':' and '\'), so the script's escaping is exercised.
AWKWARD = "colon:" + secrets.token_hex(6) + "\\back\\slash:"
VALUES = {
    "projects.enabled": False,
    "users.postgresql.auth.database": "atlas_users",  # != the role: a lost PGDATABASE cannot pass by default
    "users.postgresql.auth.password": AWKWARD,
    "users.postgresql.backup.enabled": True,
    "users.postgresql.backup.keep": KEEP,
}
CRONJOB, STATEFULSET = "atlas-users-postgresql-backup", "atlas-users-postgresql"
DUMP_NAME = re.compile(r"atlas_users-(\d{8}T\d{6}Z)\.dump")
SEEDED_ROWS = 2000


def _secret(manifests: list[dict]):
    def value(name: str, key: str) -> str:
        return base64.b64decode(find(manifests, "Secret", name)["data"][key]).decode()

    return value


@dataclass
class BackupPod:
    """The CronJob's pod in the sandbox; its claim persists across runs, as the PersistentVolumeClaim does."""

    pod: sb.Pod
    container: sb.Container
    argv: list[str]
    env: dict[str, str]
    spec: dict
    runs: list[float] = field(default_factory=list)  # seconds per run
    _last_end: float = 0.0

    @property
    def claim(self) -> str:
        return self.pod.volume_path("backups")

    def dumps(self) -> list[str]:
        return sorted(n for n in os.listdir(self.claim) if DUMP_NAME.fullmatch(n))

    def listing(self) -> dict[str, tuple[int, int]]:
        """Every file in the claim: name -> (size, mtime_ns)."""
        return {
            n: (os.stat(p).st_size, os.stat(p).st_mtime_ns)
            for n in os.listdir(self.claim)
            if os.path.isfile(p := os.path.join(self.claim, n))
        }

    def _distinct_second(self) -> None:
        """The dump's name has a one-second stamp (date -u, taken during the run): begin each run in a later
        second than the one the previous run ended in, so it cannot share its stamp."""
        wait = math.floor(self._last_end) + 1 - time.time()
        if wait > 0:
            time.sleep(wait + 0.02)

    def run(self, timeout: float = 120) -> sb.Completed:
        self._distinct_second()
        started = time.monotonic()
        try:
            return self.container.run(self.argv, self.env, timeout=timeout)
        finally:
            self.runs.append(time.monotonic() - started)
            self._last_end = time.time()

    def start(self) -> sb.Running:
        """Started, not awaited: the caller stops it."""
        self._distinct_second()
        return self.container.start(self.argv, self.env)


@contextlib.contextmanager
def backup_pod(manifests: list[dict], db) -> BackupPod:
    cronjob = find(manifests, "CronJob", CRONJOB)
    spec = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    image = image_for(container["image"])
    env = {**image.env, **resolve_env(manifests, container, {})}
    # The one rewrite: the Service's name and port -> where the database listens here.
    sts = find(manifests, "StatefulSet", STATEFULSET)
    service = find(manifests, "Service", sts["spec"]["serviceName"])
    assert env["PGHOST"] == service["metadata"]["name"], "the job connects to the database's Service"
    assert int(env["PGPORT"]) in [p["port"] for p in service["spec"]["ports"]]
    env.update(PGHOST=db.host, PGPORT=str(db.port))
    with sb.Pod(f"{CRONJOB}-sandbox", spec, secret_data=_secret(manifests)) as pod:
        yield BackupPod(pod, pod.container(container, image), container_argv(container, image), env, spec)


def _migrate(manifests: list[dict], db) -> float:
    """The rendered migrate init container (python -m users migrate) against the chart's database."""
    contract = service_contract(manifests, "users")
    init = contract.container("migrate", init=True)
    image = image_for(init["image"])
    with sb.Pod("atlas-users-migrate-sandbox", contract.pod_spec) as pod:
        migrate = pod.container(init, image)
        env = {**image.env, **contract.env, "PGHOST": db.host, "PGPORT": str(db.port)}
        started = time.monotonic()
        done = migrate.run(container_argv(init, image), env, timeout=120)
    assert done.returncode == 0, done.output
    return time.monotonic() - started


def _connect(db, database: str | None = None):
    conn = psycopg2.connect(
        host=db.host, port=db.port, user=db.spec.user, password=db.spec.password, dbname=database or db.spec.database
    )
    conn.autocommit = True
    return conn


def _seed(db) -> None:
    """Rows the dump must carry exactly: awkward text, microsecond timestamps, gaps in the identity."""
    conn = _connect(db)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO users (email, name, created_at, updated_at)"
            " SELECT 'user' || i || '@example.test', 'User ' || i || repeat(' x', i %% 50),"
            "        timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second 1 microsecond',"
            "        now() - i * interval '3 minutes'"
            " FROM generate_series(1, %s) AS i",
            (SEEDED_ROWS - 4,),
        )
        special = [
            ("zoe@example.test", "Zoë Ærøskøbing 日本 🎉"),
            ("quote@example.test", 'O\'Brien "the" \\backslash\\'),
            ("lines@example.test", "two\nlines\tand a tab"),
            ("Case@Example.TEST", "x" * 200),
        ]
        cur.executemany("INSERT INTO users (email, name) VALUES (%s, %s)", special)
        cur.execute("DELETE FROM users WHERE id % 97 = 0")  # identity gaps the restore must keep
    conn.close()


def _snapshot(db, database: str | None = None) -> dict:
    """Every table's rows (all columns, in a total order), the columns, indexes and sequence positions."""
    conn = _connect(db, database)
    out: dict = {}
    with conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
        tables = [t for (t,) in cur.fetchall()]
        for table in tables:
            cur.execute(
                "SELECT column_name, data_type, is_nullable, column_default, is_identity"
                " FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s"
                " ORDER BY ordinal_position",
                (table,),
            )
            columns = cur.fetchall()
            order = sql.SQL(", ").join(sql.Identifier(c[0]) for c in columns)
            cur.execute(sql.SQL("SELECT * FROM {} ORDER BY {}").format(sql.Identifier(table), order))
            out[table] = {"columns": columns, "rows": cur.fetchall()}
        cur.execute("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY indexname")
        out["indexes"] = cur.fetchall()
        cur.execute("SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'public' ORDER BY 1")
        out["sequences"] = cur.fetchall()
    conn.close()
    return out


def _restore(db, dump: str, database: str) -> float:
    conn = _connect(db)
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    conn.close()
    started = time.monotonic()
    proc = subprocess.run(
        [os.path.join(_bindir(), "pg_restore"), "--exit-on-error", "--no-password", "--dbname", database, dump],
        env={
            "PATH": "/usr/bin:/bin",
            "PGHOST": db.host,
            "PGPORT": str(db.port),
            "PGUSER": db.spec.user,
            "PGPASSWORD": db.spec.password,
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return time.monotonic() - started


@pytest.fixture(scope="module")
def manifests() -> list[dict]:
    return render(VALUES)


@pytest.fixture(scope="module")
def seeded(manifests):
    """The chart's users database, migrated by the service and seeded; per module (and xdist worker)."""
    with chart_database(manifests, find(manifests, "StatefulSet", STATEFULSET)) as db:
        assert db.spec.password == AWKWARD
        db.migrate_seconds = _migrate(manifests, db)
        _seed(db)
        yield db


# -- the round trip ----------------------------------------------------------------------------------


def test_the_job_dumps_and_the_dump_restores_with_identical_rows(manifests, seeded) -> None:
    before = _snapshot(seeded)
    assert len(before["users"]["rows"]) == SEEDED_ROWS - SEEDED_ROWS // 97
    assert [r[0] for r in before["schema_migrations"]["rows"]] == [1], "the service's one migration, applied"
    with backup_pod(manifests, seeded) as job:
        done = job.run()
        assert done.returncode == 0, done.output
        (name,) = job.dumps()
        dump = os.path.join(job.claim, name)
        assert sorted(os.listdir(job.claim)) == sorted(["lost+found", name]), "no partial file, no pgpass there"
        assert DUMP_NAME.fullmatch(name).group(1) <= time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        with open(dump, "rb") as f:
            assert f.read(5) == b"PGDMP", "pg_dump's custom format"
        info = os.stat(dump)
        assert (info.st_uid, info.st_gid, oct(info.st_mode & 0o777)) == (70, 70, "0o640")
        # The password went through a pgpass file on the memory-backed /tmp, never the environment.
        pgpass = os.path.join(job.pod.volume_path("tmp"), "pgpass")
        assert oct(os.stat(pgpass).st_mode & 0o777) == "0o600"
        with open(pgpass) as f:
            assert f.read() == "*:*:*:*:" + AWKWARD.replace("\\", "\\\\").replace(":", "\\:") + "\n"
        assert not [k for k, v in job.env.items() if AWKWARD in v], "the password is in no variable"
        assert not [a for a in job.argv if AWKWARD in a], "nor on the command line"
        assert f"wrote {dump.replace(job.claim, '/backups')}" in done.output, done.output

        restore_seconds = _restore(seeded, dump, "restored")
        after = _snapshot(seeded, "restored")
        assert after == before, "the restored database differs"
        size = os.path.getsize(dump)
    print(
        f"\nround trip: {len(before['users']['rows'])} users rows + {len(before['schema_migrations']['rows'])} "
        f"schema_migrations row(s); dump {size} bytes; migrate {seeded.migrate_seconds:.2f}s, "
        f"database startup {seeded.startup_seconds:.2f}s, job {job.runs[0]:.2f}s, restore {restore_seconds:.2f}s; "
        f"notes {job.pod.notes + job.container.notes}"
    )


# -- retention ---------------------------------------------------------------------------------------


def test_retention_keeps_exactly_the_newest_keep_dumps(manifests, seeded) -> None:
    with backup_pod(manifests, seeded) as job:
        # Files retention must leave alone, and a partial file an interrupted run left behind.
        for other in ("notes.txt", "atlas_users-manual.dump", "atlas_users-20000101T000000Z.dump.bak"):
            with open(os.path.join(job.claim, other), "w") as f:
                f.write("not a dump of this job\n")
        stale = os.path.join(job.claim, ".atlas_users-20000101T000000Z.dump.partial")
        with open(stale, "w") as f:
            f.write("half")
        made: list[str] = []
        outputs: list[str] = []
        for run in range(KEEP + 2):
            done = job.run()
            assert done.returncode == 0, done.output
            outputs.append(done.output)
            (new,) = set(job.dumps()) - set(made)
            made.append(new)
            assert job.dumps() == made[-KEEP:], f"after run {run + 1}"
        assert len(set(made)) == KEEP + 2 == len(made), "each run made its own dump"
        assert job.dumps() == sorted(made)[-KEEP:], "exactly keep remain, the newest"
        assert not os.path.exists(stale)
        assert {"notes.txt", "atlas_users-manual.dump", "atlas_users-20000101T000000Z.dump.bak"} <= set(
            os.listdir(job.claim)
        )
        assert "removed /backups/.atlas_users-20000101T000000Z.dump.partial" in outputs[0], outputs[0]
        assert f"removed /backups/{made[0]} (keeping the newest {KEEP})" in outputs[KEEP], outputs[KEEP]
        assert f"done: {KEEP} dump(s) of atlas_users in /backups" in outputs[-1], outputs[-1]
        print(f"\nretention: {KEEP + 2} runs, {', '.join(f'{s:.2f}s' for s in job.runs)}; kept {job.dumps()}")


# -- failures: nothing is deleted, the job fails -------------------------------------------------------


def test_failing_runs_exit_non_zero_and_delete_nothing(manifests) -> None:
    """Wrong password, a run stopped while pg_dump waits (activeDeadlineSeconds), the database down."""
    sts = find(manifests, "StatefulSet", STATEFULSET)
    timings: dict[str, float] = {}
    database = contextlib.ExitStack()
    with database, contextlib.ExitStack() as stack:
        db = database.enter_context(chart_database(manifests, sts))
        _migrate(manifests, db)
        job = stack.enter_context(backup_pod(manifests, db))
        for _ in range(KEEP):
            assert job.run().returncode == 0
        kept = job.listing()
        assert len(job.dumps()) == KEEP

        # 1. The Secret now holds another password than the database's (e.g. a rotation half done).
        password_file = os.path.join(job.pod.volume_path("password"), "..data", "password")
        with open(password_file, "w") as f:
            f.write("not-the-password")
        done = job.run()
        timings["wrong password"] = job.runs[-1]
        assert done.returncode == 1, done.output
        assert "password authentication failed" in done.output, done.output
        assert "pg_dump failed: no dump written; the dumps already in /backups are untouched" in done.output
        assert job.listing() == kept, "nothing deleted, nothing added, nothing left behind"
        with open(password_file, "w") as f:
            f.write(AWKWARD)

        # 2. Stopped while pg_dump waits for a lock: the kubelet sends the image's STOPSIGNAL (SIGINT for
        #    postgres) at activeDeadlineSeconds; the script passes it on and removes its partial file.
        conn = _connect(db)
        conn.autocommit = False
        with conn.cursor() as cur:
            cur.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")

            def dump_waits() -> bool:
                probe = _connect(db)
                with probe.cursor() as c:
                    c.execute(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE application_name = %s AND wait_event_type = 'Lock'",
                        (CRONJOB,),
                    )
                    (waiting,) = c.fetchone()
                probe.close()
                return waiting == 1

            running = job.start()
            wait_until(dump_waits, timeout=30, interval=0.1)
            # Meanwhile, the job's process is what the rendered securityContext makes it.
            status, pod_ctx = running.status(), job.spec["securityContext"]
            assert status["Uid"] == [pod_ctx["runAsUser"]] * 4 == [70] * 4, status
            assert status["Gid"] == [pod_ctx["runAsGroup"]] * 4 and pod_ctx["fsGroup"] in status["Groups"], status
            assert [status[k] for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")] == [0] * 5, status
            assert status["NoNewPrivs"] == 1, status
            assert running.writable_mounts() == ["/backups", "/tmp"], "a read-only root, the claim and /tmp"
            partials = [n for n in os.listdir(job.claim) if n.endswith(".partial")]
            # The grace is a hang guard (0.06 s here when idle; once over 10 s on a machine loaded by a parallel run).
            timings["stopped while waiting"] = running.stop(grace=30)
            assert running.proc.returncode == 143, running.logs()
        conn.rollback()
        conn.close()
        assert partials, "pg_dump had started writing its partial file"
        assert job.listing() == kept, "the partial file is gone, the dumps untouched"

        # 3. The database is down (the same pod and claim, as the next scheduled run would find them).
        database.close()
        done = job.run()
        timings["database down"] = job.runs[-1]
        assert done.returncode == 1, done.output
        assert "Connection refused" in done.output, done.output
        assert job.listing() == kept
        print(f"\nfailures (non-zero, nothing deleted): {', '.join(f'{k} {v:.2f}s' for k, v in timings.items())}")
