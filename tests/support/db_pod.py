"""The chart's database pod and the Deployment controller, as far as the day-2 playbooks see them, for the
logic tests that drive playbooks/backup.yml, restore.yml and rotate-db-password.yml against the stand-in API
server (tests/support/kube_api.py).

TrustedSocketServer: a real PostgreSQL (tests/support/postgres.py) authenticated the way the official image's
entrypoint leaves it (docker-library/postgres 17/alpine3.22/docker-entrypoint.sh: initdb without --auth, so
initdb's default `local all all trust` stays, then `host all all all scram-sha-256` appended): the Unix socket
is trusted, every TCP client gives the password. The services and the tests log in over TCP, as other pods do.

PodShell: an exec handler (KubeApi.on_exec(..., stdin=True)) that runs the command a role sends into the database
pod here, for real. The translation is all of this and nothing else:
  - a path under the pod's /tmp (its emptyDir) is the same path under <root>/tmp, in every argument (a whole
    argument, `--file=/tmp/x`, or inside a `sh -c` script); `tar ... -C /` extracts under <root> instead;
  - the pod's socket directory /var/run/postgresql is the test server's socket directory;
  - PGPORT is the test server's port (the pod's server listens on libpq's default, 5432);
  - PATH starts with the test server's bin directory (pg_dump, pg_restore, psql of its major version).
The rest is the pod's: the argv as sent (no shell added), stdin, the exit code, stdout and stderr; and the
environment has POSTGRES_USER and POSTGRES_DB (the chart sets them) but no PGHOST, PGUSER, PGDATABASE or
PGPASSWORD: a command that does not name its socket, role and database, or that needs a password on the
socket, fails here as it would in the pod.

RolloutController: the Deployment controller and kubelet, reduced to what the playbooks wait for. On every GET
of the Deployment by name (k8s_scale's and k8s_info's waits poll that way) its status has caught up with its
spec - observedGeneration = generation, replicas, updatedReplicas, readyReplicas, availableReplicas =
spec.replicas - and the service's pods match it: none at 0 replicas, one Ready pod per replica otherwise, with
new names whenever the pod template changed (a rollout: kubectl.kubernetes.io/restartedAt). Not modelled: the
time a real rollout takes, surge and unavailability limits, readiness failing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2

from .kube_api import ExecStdin, KubeApi
from .postgres import PostgresServer

POD_SOCKET_DIR = "/var/run/postgresql"
POD_TMP = "/tmp"
NAMESPACE = "atlas"
RELEASE = "atlas"


class TrustedSocketServer(PostgresServer):
    """PostgresServer with the official image's authentication: socket trust, TCP scram-sha-256."""

    def init(self) -> TrustedSocketServer:
        super().init()
        hba = Path(self.datadir, "pg_hba.conf")
        lines = []
        for line in hba.read_text().splitlines():
            fields = line.split()
            if fields and fields[0] == "local":
                line = " ".join([*fields[:-1], "trust"]) + "  # as initdb leaves it in the official image"
            lines.append(line)
        hba.write_text("\n".join(lines) + "\n")
        return self

    @property
    def socket_dir(self) -> str:
        return self.workdir


def labels(component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "atlas",
        "app.kubernetes.io/instance": RELEASE,
        "app.kubernetes.io/component": component,
    }


@dataclass
class Ran:
    """One command the pod ran: as sent, as run here, and how it went."""

    sent: list[str]
    ran: list[str]
    rc: int
    seconds: float
    stdin_bytes: int


@dataclass
class PodShell:
    """Runs what is exec'd into the database pod on this machine (see the module docstring)."""

    root: Path
    server: TrustedSocketServer
    env: dict[str, str]  # the pod's own variables (POSTGRES_USER, POSTGRES_DB)
    log: list[Ran] = field(default_factory=list)
    # (predicate on the argv as sent, exit code, stderr): the first match answers instead of running it.
    faults: list[tuple[Callable[[list[str]], bool], int, bytes]] = field(default_factory=list)
    # Called with the argv as sent before each command runs (a test looks at the cluster at that moment).
    before: Callable[[list[str]], None] | None = None

    def __post_init__(self) -> None:
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def translate(self, argv: list[str]) -> list[str]:
        out = []
        for i, arg in enumerate(argv):
            if arg == "/" and i > 0 and argv[i - 1] == "-C":
                out.append(str(self.root))
                continue
            # /tmp first: the test server's socket directory is itself under this machine's /tmp.
            arg = f"{self.root}{POD_TMP}" if arg == POD_TMP else arg.replace(POD_TMP + "/", f"{self.root}{POD_TMP}/")
            out.append(arg.replace(POD_SOCKET_DIR, self.server.socket_dir))
        return out

    def __call__(self, command: list[str], stdin: ExecStdin) -> tuple[bytes, bytes, int]:
        if self.before is not None:
            self.before(command)
        for predicate, rc, stderr in self.faults:
            if predicate(command):
                self.faults.remove((predicate, rc, stderr))
                self.log.append(Ran(command, [], rc, 0.0, 0))
                return b"", stderr, rc
        argv = self.translate(command)
        data = stdin.read() if argv and argv[0] == "tar" else b""
        env = {
            "PATH": f"{self.server.bindir}:/usr/bin:/bin",
            "HOME": str(self.root),
            "PGPORT": str(self.server.port),
            **self.env,
        }
        start = time.monotonic()
        proc = subprocess.run(argv, input=data, capture_output=True, env=env, cwd=self.root, timeout=120)
        with self._lock:
            self.log.append(Ran(command, argv, proc.returncode, time.monotonic() - start, len(data)))
        return proc.stdout, proc.stderr, proc.returncode

    @staticmethod
    def program(argv: list[str]) -> str:
        """argv[0], or the first word of a `sh -c` script."""
        if argv[:2] == ["sh", "-c"] and len(argv) > 2:
            return (argv[2].split() or [""])[0]
        return argv[0] if argv else ""

    def programs(self) -> list[str]:
        return [self.program(r.sent) for r in self.log]

    def ran(self, program: str) -> list[Ran]:
        return [r for r in self.log if self.program(r.sent) == program]


class RolloutController:
    """Deployment status and pods that follow the spec on every GET of the Deployment (module docstring)."""

    def __init__(self, api: KubeApi, service: str, pod_handler: Callable, namespace: str = NAMESPACE):
        self.api, self.service, self.namespace = api, service, namespace
        self.name = f"{RELEASE}-{service}"
        self.pod_handler = pod_handler
        self.rollouts = 0
        self._template: str | None = None
        api.add(KubeApi.deployment(self.name, namespace, replicas=1, labels=labels(service)))
        self.sync(self.api.get("Deployment", namespace, self.name))
        api.on_get("Deployment", namespace, self.name, self._answer)

    def _answer(self, _n: int) -> dict:
        obj = self.api.get("Deployment", self.namespace, self.name)
        assert obj is not None
        self.sync(obj)
        obj = self.api.get("Deployment", self.namespace, self.name)
        assert obj is not None
        return obj

    def sync(self, obj: dict) -> None:
        replicas = obj["spec"].get("replicas", 1)
        template = hashlib.sha256(json.dumps(obj["spec"]["template"], sort_keys=True).encode()).hexdigest()[:10]
        if self._template is not None and template != self._template:
            self.rollouts += 1
        self._template = template
        status = {"observedGeneration": obj["metadata"].get("generation", 1)}
        if replicas:
            status.update(
                {"replicas": replicas, "updatedReplicas": replicas, "readyReplicas": replicas}
                | {"availableReplicas": replicas}
            )
        status["conditions"] = [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
        ]
        obj["status"] = status
        self.api.add(obj)
        wanted = {f"{self.name}-{template}-{i}" for i in range(replicas)}
        pods = self.api.objects("Pod", self.namespace)
        current = {p["metadata"]["name"] for p in pods if p["metadata"]["labels"] == labels(self.service)}
        for name in current - wanted:
            self.api.remove("Pod", self.namespace, name)
        for name in wanted - current:
            self.api.add(KubeApi.pod(name, self.namespace, labels=labels(self.service), containers=[self.service]))
            self.api.on_exec(self.namespace, name, self.service, self.pod_handler)

    def replicas(self) -> int:
        obj = self.api.get("Deployment", self.namespace, self.name)
        assert obj is not None
        return obj["spec"].get("replicas", 1)


def service_answers(api: KubeApi, server: PostgresServer, secret: str, database: str, user: str):
    """What a service pod answers to verify's `python -c ... urlopen('http://127.0.0.1:8080<path>')`:
    /readyz ready; /db-status connects for real over TCP with the password in the Secret as it is now (the
    pod's PGPASSWORD), so it reports connected only when the Secret and PostgreSQL agree."""

    def handler(command: list[str]):
        script = command[-1]
        if "/readyz" in script:
            return json.dumps({"status": "ready"}).encode(), b"", 0
        if "/db-status" in script:
            stored = api.get("Secret", NAMESPACE, secret)
            password = base64.b64decode(stored["data"]["password"]).decode() if stored else ""
            try:
                conn = psycopg2.connect(
                    host=server.host, port=server.port, dbname=database, user=user, password=password, connect_timeout=5
                )
                conn.close()
                return json.dumps({"connected": True, "server_version": "test"}).encode(), b"", 0
            except psycopg2.OperationalError as exc:
                body = json.dumps({"connected": False, "error": str(exc).strip()}).encode()
                return b"", body, 22  # urlopen raises on the 503: python exits non-zero
        return b"", f"unexpected command: {shlex.join(command)}".encode(), 127

    return handler


def can_log_in(server: PostgresServer, database: str, user: str, password: str) -> bool:
    """A real login over TCP (scram-sha-256), as a service pod makes it."""
    try:
        psycopg2.connect(
            host=server.host, port=server.port, dbname=database, user=user, password=password, connect_timeout=5
        ).close()
        return True
    except psycopg2.OperationalError:
        return False


def secret_password(api: KubeApi, name: str) -> str:
    stored = api.get("Secret", NAMESPACE, name)
    assert stored is not None, name
    return base64.b64decode(stored["data"]["password"]).decode()


def write_password_file(path: Path, password: str) -> None:
    """As ansible.builtin.password writes one (lookup/password.py _write_password_file): 0600, newline."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(password + "\n")
    os.chmod(path, 0o600)
