"""Day-2 operations (docs/operations.md): playbooks/backup.yml, restore.yml and rotate-db-password.yml.

Real: ansible-playbook with the settings, db_target, db_backup, db_restore, db_password and verify roles;
kubernetes.core 6.2.0's k8s_info, k8s, k8s_exec, k8s_cp (tar and cat over the exec websocket) and k8s_scale with
the kubernetes 37.0.2 client; the commands the roles send into the database pod - pg_dump, sha256sum, cat, tar,
pg_restore, psql, rm - run for real against a real PostgreSQL whose socket is trusted as in the official image
(tests/support/db_pod.py says exactly what is translated: /tmp, the socket directory, `tar -C /`, PGPORT);
logins over TCP (scram-sha-256), as the services make them.
Stand-in: the Kubernetes API server (tests/support/kube_api.py), the Deployment controller (status and pods
follow the spec at once) and the service pods' HTTP answers (/db-status logs in with the Secret's password).
What only a real cluster shows: that k8s_cp works against a real kubelet (its tar race included), how long a
real rollout takes, and that the rolling restart fails no request.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from tests.provisioning.ansible_run import BIN_DIR, REPO_ROOT, PlaybookRun
from tests.support.db_pod import (
    NAMESPACE,
    PodShell,
    RolloutController,
    TrustedSocketServer,
    can_log_in,
    labels,
    secret_password,
    service_answers,
    write_password_file,
)
from tests.support.kube_api import KubeApi

pytestmark = [pytest.mark.logic, pytest.mark.slow]

SERVICE = "users"
DB_POD = "atlas-users-postgresql-0"
SECRET = "atlas-users-db"  # pragma: allowlist secret - the Secret's name
ACCOUNTS, EVENTS = 5000, 20000


def run_playbook_args(playbook: str, args: list[str], extra_vars: dict, env: dict) -> PlaybookRun:
    """tests/provisioning/ansible_run.run_playbook (inventory dev, the project's ansible.cfg, the json
    callback) with command-line options it does not take (--check)."""
    cmd = [os.path.join(BIN_DIR, "ansible-playbook"), playbook, "-i", os.path.join(REPO_ROOT, "inventories", "dev")]
    cmd += [*args, "-e", json.dumps(extra_vars)]
    full_env = {
        **os.environ,
        "ANSIBLE_CONFIG": os.path.join(REPO_ROOT, "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
        "ANSIBLE_NOCOLOR": "1",
        "PATH": os.pathsep.join([os.path.join(REPO_ROOT, ".tools", "bin"), BIN_DIR, os.environ.get("PATH", "")]),
        **env,
    }
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=full_env, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - start
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"no JSON report (rc={proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr}") from exc
    return PlaybookRun(proc.returncode, seconds, report, proc.stderr)


def messages(run: PlaybookRun) -> list[str]:
    """Every msg a task printed or failed with (a debug msg may be a list)."""
    found = []
    for play in run.report.get("plays", []):
        for task in play["tasks"]:
            for result in task["hosts"].values():
                for r in [result, *result.get("results", [])]:
                    msg = r.get("msg")
                    if isinstance(msg, list):
                        found += [str(m) for m in msg]
                    elif msg:
                        found.append(str(msg))
    return found


def timeline(api: KubeApi) -> list[str]:
    """The requests that change or run something, in order: execs (pod and program) and scales."""
    out = []
    for r in api.requests:
        if r.path.endswith("/exec"):
            pod = r.path.split("/pods/")[1].split("/")[0]
            out.append(f"exec {'db' if pod == DB_POD else 'service'} {PodShell.program(r.query.get('command', []))}")
        elif r.method == "PATCH" and r.path.endswith("/scale"):
            out.append(f"scale {(r.body.get('spec') or {}).get('replicas', 0)}")
        elif r.method not in ("GET",):
            out.append(f"{r.method} {r.path.rsplit('/', 2)[-2]}/{r.path.rsplit('/', 1)[-1]}")
    return out


@pytest.fixture(scope="module")
def pg():
    with TrustedSocketServer().running() as server:
        yield server


@contextlib.contextmanager
def connected(pg: TrustedSocketServer, db: str, password: str):
    conn = psycopg2.connect(host=pg.host, port=pg.port, dbname=db, user=db, password=password)
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


def seed(conn) -> None:
    """Two tables owned by the service's role, with a foreign key and a sequence, as a service's schema has."""
    with conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE accounts (id bigserial PRIMARY KEY, email text UNIQUE NOT NULL, name text NOT NULL,"
            " created_at timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z')"
        )
        cur.execute(
            "CREATE TABLE events (id bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts(id),"
            " kind text NOT NULL, payload jsonb NOT NULL)"
        )
        cur.execute(
            "INSERT INTO accounts (email, name) SELECT 'user' || i || '@example.com', 'User ' || i"
            " FROM generate_series(1, %s) AS i",
            (ACCOUNTS,),
        )
        cur.execute(
            "INSERT INTO events (account_id, kind, payload) SELECT 1 + i %% %s, 'kind' || i %% 7,"
            " jsonb_build_object('n', i, 'tag', md5(i::text)) FROM generate_series(1, %s) AS i",
            (ACCOUNTS, EVENTS),
        )


def change_everything(conn) -> None:
    """What happens after a backup: rows deleted, updated and added, and a table created."""
    with conn.cursor() as cur:
        cur.execute("DELETE FROM events WHERE account_id <= 100")
        cur.execute("DELETE FROM accounts WHERE id <= 100")
        cur.execute("UPDATE accounts SET name = name || ' (renamed)' WHERE id % 10 = 0")
        cur.execute(
            "INSERT INTO accounts (email, name) SELECT 'late' || i || '@example.com', 'Late'"
            " FROM generate_series(1, 300) AS i"
        )
        cur.execute("CREATE TABLE later (x int)")


def rows(conn) -> dict[str, list[tuple]]:
    """Every row of both tables (ordered) and the sequence's position: what "equal" means for a restore."""
    with conn.cursor() as cur:
        out = {}
        for table in ("accounts", "events"):
            cur.execute(f"SELECT * FROM {table} ORDER BY id")  # noqa: S608 - fixed table names
            out[table] = cur.fetchall()
        cur.execute("SELECT last_value FROM accounts_id_seq")
        out["accounts_id_seq"] = cur.fetchall()
        return out


@dataclass
class Cluster:
    api: KubeApi
    pg: TrustedSocketServer
    shell: PodShell
    deployment: RolloutController
    root: Path  # atlas_project_root of the runs: backups/ and .credentials/ are under it
    db: str  # the service's database and login role (postgresql.auth.database and .username)
    password: str  # its password before the test changes anything
    kubeconfig: str

    def extra(self, **more) -> dict:
        return {
            "atlas_profile": "users-only",
            # The entry is not what these runs prove (the verify stage checks the gateway's routes:
            # tests/provisioning/test_verify_tokens.py); an Ingress asks the stand-in API server nothing more.
            "atlas_entry": "ingress",
            "atlas_project_root": str(self.root),
            "atlas_chart_path": os.path.join(REPO_ROOT, "charts", "atlas"),
            "atlas_service_overrides": {SERVICE: {"postgresql": {"auth": {"username": self.db, "database": self.db}}}},
            **more,
        }

    def run(self, playbook: str, *args: str, **extra) -> PlaybookRun:
        return run_playbook_args(
            f"playbooks/{playbook}", list(args), self.extra(**extra), {"K8S_AUTH_KUBECONFIG": self.kubeconfig}
        )

    def connect(self, password: str | None = None):
        return connected(self.pg, self.db, password or self.password)

    def rows(self) -> dict[str, list[tuple]]:
        with self.connect() as conn:
            return rows(conn)

    @property
    def credentials(self) -> Path:
        return self.root / ".credentials" / "dev" / f"{SERVICE}-db"

    def writes(self) -> list[str]:
        """Requests that are not reads (an exec is a GET upgraded to a websocket)."""
        return [f"{r.method} {r.path}" for r in self.api.requests if r.method != "GET"]

    def scales(self) -> list[int]:
        return [int(t.split()[1]) for t in timeline(self.api) if t.startswith("scale ")]

    def backups(self) -> list[Path]:
        folder = self.root / "backups" / "dev"
        return sorted(folder.glob("*.dump")) if folder.exists() else []

    def pod_tmp(self) -> list[str]:
        return sorted(p.name for p in (self.shell.root / "tmp").iterdir())

    def local_dump(self, name: str = "users-20261201T221530Z.dump") -> Path:
        """A dump made here with the test server's own pg_dump (custom format), under backups/dev/."""
        path = self.root / "backups" / "dev" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pg_dump = [f"{self.pg.bindir}/pg_dump", "-Fc", "-h", self.pg.socket_dir, "-p", str(self.pg.port)]
        subprocess.run(
            [*pg_dump, "-U", self.db, "-d", self.db, "-f", str(path)],
            check=True,
        )
        return path


@pytest.fixture
def cluster(pg, tmp_path):
    """users-only: the users database (real, seeded), its Secret and credentials file, its pod and Deployment."""
    db = "t_" + os.urandom(6).hex()
    password = pg.create_database(db)["PGPASSWORD"]
    with connected(pg, db, password) as conn:
        seed(conn)
    root = tmp_path / "project"
    write_password_file(root / ".credentials" / "dev" / f"{SERVICE}-db", password)
    with KubeApi() as api:
        api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        secret_meta = {"name": SECRET, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/part-of": "atlas"}}
        data = {"password": base64.b64encode(password.encode()).decode()}
        api.add({"apiVersion": "v1", "kind": "Secret", "type": "Opaque", "metadata": secret_meta, "data": data})
        api.add(KubeApi.pod(DB_POD, NAMESPACE, labels=labels(f"{SERVICE}-postgresql"), containers=["postgresql"]))
        shell = PodShell(tmp_path / "pod", pg, {"POSTGRES_USER": db, "POSTGRES_DB": db})
        api.on_exec(NAMESPACE, DB_POD, "postgresql", shell, stdin=True)
        deployment = RolloutController(api, SERVICE, service_answers(api, pg, SECRET, db, db))
        kubeconfig = api.kubeconfig(tmp_path / "kubeconfig", context="atlas-dev")
        yield Cluster(api, pg, shell, deployment, root, db, password, kubeconfig)
        assert api.errors == [], api.errors[0]
    pg.drop_database(db)


def report(line: str) -> None:
    """Figures for the record (shown with pytest -s, and with a failure's captured output)."""
    print(f"\n[day-2] {line}", file=sys.stderr)


# --- backup and restore ------------------------------------------------------------------------------------


def test_backup_then_restore_brings_back_exactly_the_backed_up_rows(cluster):
    before = cluster.rows()

    backup = cluster.run("backup.yml")

    assert backup.rc == 0, backup.failure_messages()
    [dump] = cluster.backups()
    assert dump.name.startswith(f"{SERVICE}-") and dump.name.endswith("Z.dump")
    assert len(dump.name) == len("users-20261201T221530Z.dump"), dump.name
    assert dump.stat().st_size > 0 and dump.stat().st_mode & 0o777 == 0o600
    assert dump.read_bytes()[:5] == b"PGDMP"  # pg_dump's custom format
    assert any(f"users: backups/dev/{dump.name} ({dump.stat().st_size} bytes" in m for m in messages(backup))
    assert cluster.pod_tmp() == []  # the pod's copy is gone
    assert cluster.writes() == []  # a backup changes nothing in the cluster
    dump_seconds = cluster.shell.ran("pg_dump")[0].seconds

    with cluster.connect() as conn:
        change_everything(conn)
    changed = cluster.rows()
    assert changed["accounts"] != before["accounts"]
    cluster.api.clear_requests()
    during: list[int] = []  # the Deployment's spec.replicas while pg_restore runs
    cluster.shell.before = lambda argv: (
        PodShell.program(argv) == "pg_restore" and "--clean" in argv and during.append(cluster.deployment.replicas())
    )

    restore = cluster.run("restore.yml", service=SERVICE, file=f"backups/dev/{dump.name}", confirm="yes")

    assert restore.rc == 0, restore.failure_messages()
    after = cluster.rows()
    assert after == before
    with cluster.connect() as conn, conn.cursor() as cur:
        # pg_restore --clean drops what the dump holds, nothing else: a table made after the backup stays.
        cur.execute("SELECT to_regclass('later') IS NOT NULL")
        assert cur.fetchone()[0]
    assert cluster.pod_tmp() == []
    # Copied and checked, then stopped, restored, scaled back to its 1 replica, cleaned up, verified.
    assert timeline(cluster.api) == [
        "exec db test",  # k8s_cp to_pod: is the destination a directory?
        "exec db tar",  # k8s_cp to_pod: the file, through tar on stdin
        "exec db sha256sum",  # the whole file is there, and pg_restore --list reads it
        "scale 0",
        "exec db pg_restore",
        "scale 1",
        "exec db rm",
        "exec service python",  # verify: /readyz
        "exec service python",  # verify: /db-status
    ]
    assert during == [0] and cluster.deployment.replicas() == 1
    [restored] = [m for m in messages(restore) if "restored from" in m]
    assert "back to 1 replica(s)" in restored and "and answering" in restored
    restore_seconds = cluster.shell.ran("pg_restore")[-1].seconds
    renamed = sum(r[2].endswith("(renamed)") for r in changed["accounts"])
    report(
        f"round trip: backed up accounts {len(before['accounts'])} rows, events {len(before['events'])} rows; "
        f"after the backup: accounts {len(changed['accounts'])} rows ({renamed} renamed), "
        f"events {len(changed['events'])} rows; restored: accounts {len(after['accounts'])}, "
        f"events {len(after['events'])}, equal to the backup. Dump {dump.stat().st_size} bytes; "
        f"pg_dump {dump_seconds:.2f} s, pg_restore {restore_seconds:.2f} s (in the pod); "
        f"backup.yml {backup.seconds:.0f} s, restore.yml {restore.seconds:.0f} s (ansible-playbook wall time)"
    )


def test_restore_without_confirm_stops_before_any_request_and_says_what_it_would_do(cluster):
    dump = cluster.local_dump()

    run = cluster.run("restore.yml", service=SERVICE, file=f"backups/dev/{dump.name}")

    assert run.rc != 0
    [message] = [m for m in run.failure_messages() if m.startswith("Not confirmed")]
    assert f"replaces the {SERVICE} database" in message and f"with backups/dev/{dump.name}" in message
    assert "scales its Deployment to 0" in message and "add -e confirm=yes" in message
    assert cluster.api.requests == []


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"file": "backups/dev/missing.dump"}, "file=backups/dev/missing.dump: does not exist"),
        ({"file": "backups/dev/empty.dump"}, "file=backups/dev/empty.dump: is empty (0 bytes), not a pg_dump archive"),
        ({"file": "backups/dev"}, "file=backups/dev: is not a regular file"),
        ({"service": "orders"}, "service=orders: not an enabled service of profile users-only (enabled: users)"),
        ({"service": "projects"}, "service=projects: not an enabled service of profile users-only (enabled: users)"),
        ({"service": ""}, "usage: ansible-playbook playbooks/restore.yml"),
    ],
    ids=["missing-file", "empty-file", "a-directory", "unknown-service", "disabled-service", "no-service"],
)
def test_a_bad_file_or_service_stops_the_restore_before_any_request(cluster, given, expected):
    (cluster.root / "backups" / "dev").mkdir(parents=True)
    (cluster.root / "backups" / "dev" / "empty.dump").write_bytes(b"")
    before = cluster.rows()
    file = given.get("file", f"backups/dev/{cluster.local_dump().name}")

    run = cluster.run("restore.yml", service=given.get("service", SERVICE), file=file, confirm="yes")

    assert run.rc != 0
    assert any(m.startswith(expected) for m in run.failure_messages()), run.failure_messages()
    assert cluster.api.requests == []
    assert cluster.rows() == before and cluster.deployment.replicas() == 1


def test_a_corrupt_dump_is_refused_inside_the_pod_before_the_service_is_stopped(cluster):
    corrupt = cluster.root / "backups" / "dev" / "users-20261201T000000Z.dump"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(os.urandom(64 * 1024))
    with cluster.connect() as conn:
        change_everything(conn)
    before = cluster.rows()

    run = cluster.run("restore.yml", service=SERVICE, file=f"backups/dev/{corrupt.name}", confirm="yes")

    assert run.rc != 0
    [message] = [m for m in run.failure_messages() if "is not a pg_dump custom-format archive" in m]
    assert "pg_restore: error: input file does not appear to be a valid archive" in message, message
    assert "nothing was changed" in message
    assert cluster.scales() == []  # no scale-down at all
    assert cluster.rows() == before and cluster.deployment.replicas() == 1
    assert cluster.pod_tmp() == []  # the copy was removed
    assert [t for t in timeline(cluster.api) if t.startswith("exec db")][-1] == "exec db rm"


def test_a_restore_failing_part_way_is_rolled_back_and_the_service_is_scaled_back(cluster):
    """A truncated dump: its table of contents is intact (pg_restore --list passes), its data is not, so
    pg_restore fails after --clean has dropped the tables - inside the one transaction, which is rolled back.
    With autoscaling on, the Deployment goes back to the count it had (the HPA's) and the HPA carries on."""
    dump = cluster.local_dump()
    data = dump.read_bytes()
    dump.write_bytes(data[: len(data) * 2 // 3])
    with cluster.connect() as conn:
        change_everything(conn)
    before = cluster.rows()
    obj = cluster.api.get("Deployment", NAMESPACE, "atlas-users")
    obj["spec"]["replicas"] = 3
    cluster.api.add(obj)
    autoscaled = {"autoscaling": {"enabled": True, "minReplicas": 2, "maxReplicas": 6}}
    overrides = cluster.extra()["atlas_service_overrides"]
    overrides[SERVICE].update(autoscaled)

    run = cluster.run(
        "restore.yml",
        service=SERVICE,
        file=f"backups/dev/{dump.name}",
        confirm="yes",
        atlas_service_overrides=overrides,
    )

    assert run.rc != 0
    [message] = [m for m in run.failure_messages() if m.startswith("The restore of users")]
    assert "failed at Run pg_restore in one transaction" in message, message
    assert "pg_restore ran in one transaction, which was rolled back" in message
    assert "scaled back to 3 replica(s) (the HorizontalPodAutoscaler takes over from there)" in message
    assert cluster.rows() == before  # untouched, though --clean had dropped the tables inside the transaction
    assert cluster.scales() == [0, 3] and cluster.deployment.replicas() == 3
    assert cluster.pod_tmp() == []


def test_check_mode_restore_only_reads(cluster):
    dump = cluster.local_dump()
    before = cluster.rows()

    run = cluster.run("restore.yml", "--check", service=SERVICE, file=f"backups/dev/{dump.name}", confirm="yes")

    assert run.rc == 0, run.failure_messages()
    [plan] = [m for m in messages(run) if m.startswith("check mode, nothing done")]
    assert f"into pod {DB_POD}" in plan and "scales Deployment atlas-users from 1 to 0" in plan
    assert {r.method for r in cluster.api.requests} == {"GET"}
    assert not [r for r in cluster.api.requests if r.path.endswith("/exec")]  # not even an exec
    assert cluster.rows() == before and cluster.pod_tmp() == []


def test_check_mode_backup_writes_nothing(cluster):
    run = cluster.run("backup.yml", "--check")

    assert run.rc == 0, run.failure_messages()
    assert not (cluster.root / "backups").exists()
    assert {r.method for r in cluster.api.requests} == {"GET"}
    assert not [r for r in cluster.api.requests if r.path.endswith("/exec")]
    assert any(m.startswith("check mode: would write backups/dev/users-") for m in messages(run)), messages(run)
    assert cluster.pod_tmp() == []


def test_backup_skips_an_external_database_and_says_so(cluster):
    external = {"postgresql": {"enabled": False}, "externalDatabase": {"host": "db.example.com"}}

    run = cluster.run("backup.yml", atlas_service_overrides={SERVICE: external})

    assert run.rc == 0, run.failure_messages()
    assert any(m.startswith("users: skipped - its database is external") for m in messages(run)), messages(run)
    assert cluster.backups() == [] and cluster.api.requests == []


# --- password rotation -------------------------------------------------------------------------------------


def test_rotation_changes_the_password_in_postgresql_the_secret_and_the_file_then_restarts(cluster):
    old = cluster.password

    run = cluster.run("rotate-db-password.yml", service=SERVICE)

    assert run.rc == 0, run.failure_messages()
    new = cluster.credentials.read_text().strip()
    assert new != old and len(new) == 32 and new.isalnum() and new.isascii()
    assert cluster.credentials.stat().st_mode & 0o777 == 0o600
    assert not cluster.credentials.with_name("users-db.pending").exists()
    assert secret_password(cluster.api, SECRET) == new
    # Real logins over TCP, as a service makes them: the old password is refused, the new one works.
    assert not can_log_in(cluster.pg, cluster.db, cluster.db, old)
    assert can_log_in(cluster.pg, cluster.db, cluster.db, new)
    template = cluster.api.get("Deployment", NAMESPACE, "atlas-users")["spec"]["template"]
    assert template["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"].endswith("Z")
    assert cluster.deployment.rollouts == 1
    # PostgreSQL first, then the Secret, then the restart; verify (its /db-status logs in with the Secret's).
    changes = [t for t in timeline(cluster.api) if not t.startswith("exec service")]
    assert changes == ["exec db psql", f"PATCH secrets/{SECRET}", "PATCH deployments/atlas-users"], changes
    assert timeline(cluster.api)[-2:] == ["exec service python", "exec service python"]
    # The password itself never went into the pod: ALTER ROLE got its SCRAM verifier.
    [alter] = [r.sent for r in cluster.shell.log if PodShell.program(r.sent) == "psql"]
    assert new not in " ".join(alter) and "PASSWORD 'SCRAM-SHA-256$4096:" in " ".join(alter)
    assert new not in json.dumps(run.report) and old not in json.dumps(run.report)  # no_log


def test_a_refused_secret_update_puts_the_old_password_back(cluster):
    cluster.api.refuse(
        "PATCH",
        f"/api/v1/namespaces/{NAMESPACE}/secrets/{SECRET}",
        f'secrets "{SECRET}" is forbidden: User "deployer" cannot patch resource "secrets" in API group "" in the'
        f' namespace "{NAMESPACE}"',
        times=2,  # the k8s module tries a strategic merge patch, then a merge patch (module_utils service.py update)
    )

    run = cluster.run("rotate-db-password.yml", service=SERVICE)

    assert run.rc != 0
    [message] = [m for m in run.failure_messages() if m.startswith("users: the rotation failed")]
    assert "failed at Put the new password in the Secret" in message and "is forbidden" in message
    assert "PostgreSQL has the old password again" in message and "everything is as before" in message
    assert can_log_in(cluster.pg, cluster.db, cluster.db, cluster.password)
    assert secret_password(cluster.api, SECRET) == cluster.password
    assert cluster.credentials.read_text().strip() == cluster.password
    assert not cluster.credentials.with_name("users-db.pending").exists()
    assert [PodShell.program(r.sent) for r in cluster.shell.log] == ["psql", "psql"]  # new, then old again
    assert cluster.deployment.rollouts == 0


def test_an_interrupted_rotation_keeps_the_new_password_pending_and_a_second_run_finishes_it(cluster):
    """The Secret update is refused and putting the old password back fails too: PostgreSQL is left with the
    new password, which only the .pending file knows. A second run resumes with it instead of making another."""
    secret = f"/api/v1/namespaces/{NAMESPACE}/secrets/{SECRET}"
    cluster.api.refuse(
        "PATCH", secret, "the server is currently unable to handle the request", 503, "ServiceUnavailable", 2
    )
    alters = iter([False, True])  # the first ALTER ROLE runs; the second (the way back) fails
    cluster.shell.faults.append(
        (lambda argv: PodShell.program(argv) == "psql" and next(alters), 2, b"psql: error: gone\n")
    )

    first = cluster.run("rotate-db-password.yml", service=SERVICE)

    assert first.rc != 0
    [message] = [m for m in first.failure_messages() if m.startswith("users: the rotation failed")]
    assert "Putting the old password back failed too (psql: error: gone)" in message, message
    assert "Run this again: it resumes with that password" in message
    pending = cluster.credentials.with_name("users-db.pending")
    new = pending.read_text().strip()
    assert can_log_in(cluster.pg, cluster.db, cluster.db, new)  # PostgreSQL has the new one...
    assert cluster.credentials.read_text().strip() == cluster.password  # ...the file and the Secret the old one
    assert secret_password(cluster.api, SECRET) == cluster.password

    second = cluster.run("rotate-db-password.yml", service=SERVICE)

    assert second.rc == 0, second.failure_messages()
    assert any("resuming an interrupted rotation" in m for m in messages(second))
    assert cluster.credentials.read_text().strip() == new and not pending.exists()
    assert secret_password(cluster.api, SECRET) == new and can_log_in(cluster.pg, cluster.db, cluster.db, new)
    assert cluster.deployment.rollouts == 1


@pytest.mark.parametrize("source", ["vault", "existing"])
def test_rotation_with_a_vault_or_an_existing_secret_changes_nothing_and_says_what_to_do(cluster, source):
    run = cluster.run("rotate-db-password.yml", service=SERVICE, atlas_db_password_source=source, atlas_db_passwords={})

    assert run.rc == 0, run.failure_messages()
    text = "\n".join(messages(run))
    if source == "vault":
        assert "atlas_db_password_source is vault: nothing was changed" in text
        # The inventory is shown relative to the project root when it is inside it; here it is not.
        inventory = os.path.join(REPO_ROOT, "inventories", "dev")
        assert "vault_atlas_db_passwords.users" in text
        assert f"ansible-vault edit {inventory}/group_vars/all/vault.yml" in text
        assert f"ansible-playbook playbooks/deploy.yml -i {inventory} --ask-vault-pass" in text
    else:
        assert f"the Secret {SECRET} (key password) is yours, so nothing was changed" in text
    assert f"-c '\\password {cluster.db}'" in text and "rollout restart" in text
    assert cluster.api.requests == []
    assert cluster.credentials.read_text().strip() == cluster.password
    assert can_log_in(cluster.pg, cluster.db, cluster.db, cluster.password)
