"""The contract between the chart and the services, executed: rendered pods run locally, as the kubelet would.

Given the manifests `helm template` rendered, ``run_contract`` takes one service's Deployment, resolves
each container's environment as the kubelet does (ConfigMap via envFrom, Secret via secretKeyRef; Secrets
the chart does not render, e.g. existingSecret, are passed in) and, against a real PostgreSQL:

1. runs the ``migrate`` init container twice: it must succeed and be idempotent;
2. runs the main container and waits for the startup probe's path within the probe's budget;
3. asserts the liveness and readiness paths answer 200;
4. runs the `helm test` pod's command against the running service.

Every container runs in the sandbox (tests/support/sandbox.py) the way the kubelet would run it: as the
rendered runAsUser/runAsGroup with fsGroup, no capabilities, no_new_privs, in its own mount namespace with
a read-only root and only the pod's volumes writable at their mountPaths, within its memory limit (where
the machine has a writable cgroup v1 memory controller). A path a process must write that the chart does
not mount writable fails the run, and the message says which container could not write where.

When the chart runs the service's database, so does the contract: the StatefulSet's PostgreSQL container
runs in the sandbox too, as uid 70 with its rendered volumes, Debian's server binaries standing in for the
``postgres:17.6-alpine`` image's, started by an emulation of that image's entrypoint
(tests/support/pg_entrypoint.py: docker-library/postgres ``17/alpine3.22/docker-entrypoint.sh`` @
6edb0a8c4def40c371514b34aef9037ec82d9110), so the superuser, the password from the mounted secret file, the
database and scram-sha-256 over TCP are what the image makes of the rendered env. An external database is
provisioned on the given ``server`` (a tests.support.postgres.PostgresServer).

What the sandbox stands in for the images: the services' image is this checkout's .venv with the ENV and USER
its Dockerfile gives the runtime stage (read from services/<service>/Dockerfile or services/Dockerfile,
``/opt/venv/bin`` -> the venv's bin; uid 10001 has no passwd entry, as there); the PostgreSQL image has its
directories, its /etc/passwd and /etc/group naming uid 70 ``postgres``, its ENV (LANG C.UTF-8 here: the
image's en_US.utf8 is C.UTF-8 under musl, and glibc here lacks the locale) and its STOPSIGNAL (SIGINT).

Only what cannot be true outside a cluster is rewritten: PGHOST/PGPORT (the database's loopback port), the
listen addresses (free loopback ports, after checking they match the container ports: ATLAS_BIND, and
PostgreSQL's listen_addresses/port as arguments), the `helm test` URL, the port in the database's exec
probes, and, because every client reaches the database over loopback, the loopback lines of its pg_hba.conf
(see pg_entrypoint.py). Probes are polled more often than their periodSeconds, within the same budget.
Not run: lifecycle hooks (the services' preStop sleep would add its seconds to every run); what the sandbox
itself does not reproduce (seccomp, the image's own files, PID/network namespaces, ...) is listed in
sandbox.py. The data volume stands in for a freshly provisioned PersistentVolume (or the emptyDir of the
ephemeral profile): every run initialises a new database, as a first install does.

Where the machine cannot sandbox (not root, no util-linux), the commands run as the current user with a
private /tmp against ``server`` as before, and the result's ``notes`` (and a warning) say so; pass
``sandbox=True`` to make that an error. The Molecule render-mode verify calls ``run_contract`` too.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from psycopg2 import sql

from . import sandbox as sb
from .net import free_port
from .postgres import _bindir, wait_until

PG_ENTRYPOINT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pg_entrypoint.py")


class ContractError(AssertionError):
    """The chart and the services disagree; the message says where."""


# -- reading the rendered manifests --------------------------------------------------------------


def _find(manifests: Iterable[dict], kind: str, name: str) -> dict | None:
    return next((d for d in manifests if d["kind"] == kind and d["metadata"]["name"] == name), None)


def _component(doc: dict) -> str | None:
    return (doc["metadata"].get("labels") or {}).get("app.kubernetes.io/component")


def _secret_value(manifests: list[dict], secrets: Mapping[str, Mapping[str, str]], name: str, key: str) -> str:
    rendered = _find(manifests, "Secret", name)
    if rendered is not None:
        data = rendered.get("data") or {}
        if key in data:
            return base64.b64decode(data[key]).decode()
        if key in (rendered.get("stringData") or {}):
            return rendered["stringData"][key]
        raise ContractError(f"Secret {name} has no key {key!r}")
    if name in secrets and key in secrets[name]:
        return secrets[name][key]
    raise ContractError(f"Secret {name} (key {key!r}) is neither rendered nor given in secrets=")


def _config_map_data(manifests: list[dict], name: str) -> dict[str, str]:
    doc = _find(manifests, "ConfigMap", name)
    if doc is None:
        raise ContractError(f"ConfigMap {name} is not rendered")
    return {k: str(v) for k, v in (doc.get("data") or {}).items()}


def resolve_env(manifests: list[dict], container: dict, secrets: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The container's environment as the kubelet builds it: envFrom first, then env (which wins)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef") or source.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        doc = _find(manifests, kind, ref["name"])
        if doc is None:
            raise ContractError(f"{container['name']}: envFrom {kind} {ref['name']} is not rendered")
        data = doc.get("data") or {}
        env.update({k: base64.b64decode(v).decode() if kind == "Secret" else str(v) for k, v in data.items()})
    for var in container.get("env", []):
        if "value" in var:
            env[var["name"]] = str(var["value"])
        elif "secretKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["secretKeyRef"]
            env[var["name"]] = _secret_value(manifests, secrets, ref["name"], ref["key"])
        elif "configMapKeyRef" in var.get("valueFrom", {}):
            ref = var["valueFrom"]["configMapKeyRef"]
            env[var["name"]] = str((_find(manifests, "ConfigMap", ref["name"]) or {}).get("data", {})[ref["key"]])
        else:
            raise ContractError(f"{container['name']}: env {var['name']} has a source the contract cannot resolve")
    return env


@dataclass
class DatabaseSpec:
    """The database the chart's PostgreSQL initialises (or an external one, from the service's view)."""

    database: str
    user: str
    password: str


@dataclass
class ServiceContract:
    """One service's rendered runtime contract."""

    service: str
    migrate_argv: list[str]
    serve_argv: list[str]
    env: dict[str, str]
    container_port: int
    probes: dict[str, str]  # startup / liveness / readiness -> path
    startup_budget: float  # seconds the startup probe allows
    grace_period: float
    database: DatabaseSpec
    smoke_argv: list[str] | None = None  # the `helm test` pod's command
    service_url: str | None = None  # in-cluster URL the smoke command uses
    # The rendered objects themselves, for the sandbox.
    deployment: dict = field(default_factory=dict, repr=False)
    test_pod: dict | None = field(default=None, repr=False)
    database_statefulset: dict | None = field(default=None, repr=False)  # None: an external database
    # The Secrets' data for the pod's secret volumes (secretFiles), as the kubelet would read them.
    secret_data: Callable[[str, str], str] | None = field(default=None, repr=False)

    @property
    def pod_spec(self) -> dict:
        return self.deployment["spec"]["template"]["spec"]

    def container(self, name: str, init: bool = False) -> dict:
        containers = self.pod_spec["initContainers" if init else "containers"]
        return next(c for c in containers if c["name"] == name)


def _probe_path(container: dict, kind: str, port: int) -> str:
    probe = container.get(kind)
    if not probe or "httpGet" not in probe:
        raise ContractError(f"{container['name']}: no HTTP {kind}")
    target = probe["httpGet"]["port"]
    named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    if named.get(target, target) != port:
        raise ContractError(f"{container['name']}: {kind} port {target!r} is not the container port {port}")
    return probe["httpGet"]["path"]


def _database_statefulset(manifests: list[dict], env: Mapping[str, str]) -> dict | None:
    """The StatefulSet behind the service's PGHOST, checked against PGPORT; None for an external database."""
    services = {d["metadata"]["name"]: d for d in manifests if d["kind"] == "Service"}
    db_service = services.get(env.get("PGHOST", ""))
    if db_service is None:
        return None  # external database: nothing rendered to compare with
    sts = next(
        (d for d in manifests if d["kind"] == "StatefulSet" and d["spec"].get("serviceName") == env["PGHOST"]), None
    )
    if sts is None:
        raise ContractError(f"PGHOST {env['PGHOST']} is a rendered Service but no StatefulSet is governed by it")
    ports = [p["port"] for p in db_service["spec"]["ports"]]
    if int(env.get("PGPORT", "5432")) not in ports:
        raise ContractError(f"PGPORT {env.get('PGPORT')} is not a port of Service {env['PGHOST']} ({ports})")
    return sts


def database_container(pod_spec: Mapping) -> dict:
    """The PostgreSQL container of a database pod, by name: the pod may also hold the exporter sidecar
    (<svc>.postgresql.metrics)."""
    (pg,) = [c for c in pod_spec["containers"] if c["name"] == "postgresql"]
    return pg


def _chart_database(manifests: list[dict], sts: dict, secrets) -> DatabaseSpec:
    """The database as the rendered StatefulSet's env would have the image initialise it."""
    pod = sts["spec"]["template"]["spec"]
    pg = database_container(pod)
    pg_env = {e["name"]: e.get("value") for e in pg.get("env", [])}
    password_file = pg_env.get("POSTGRES_PASSWORD_FILE", "")
    mount = next((m for m in pg.get("volumeMounts", []) if password_file.startswith(m["mountPath"] + "/")), None)
    if mount is None:
        raise ContractError(f"StatefulSet {sts['metadata']['name']}: POSTGRES_PASSWORD_FILE is not on a mounted volume")
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    item = os.path.relpath(password_file, mount["mountPath"])
    key = next(i["key"] for i in volume["secret"].get("items", [{"key": item, "path": item}]) if i["path"] == item)
    return DatabaseSpec(
        database=pg_env.get("POSTGRES_DB") or pg_env["POSTGRES_USER"],
        user=pg_env["POSTGRES_USER"],
        password=_secret_value(manifests, secrets, volume["secret"]["secretName"], key),
    )


def service_contract(
    manifests: list[dict], service: str, secrets: Mapping[str, Mapping[str, str]] | None = None
) -> ServiceContract:
    """Read one service's contract from the rendered manifests (the Deployment labelled with its component)."""
    secrets = secrets or {}
    deployment = next((d for d in manifests if d["kind"] == "Deployment" and _component(d) == service), None)
    if deployment is None:
        raise ContractError(f"no Deployment with app.kubernetes.io/component={service} rendered")
    pod = deployment["spec"]["template"]["spec"]
    containers = {c["name"]: c for c in pod["containers"]}
    if service not in containers:
        raise ContractError(f"Deployment {deployment['metadata']['name']} has no container named {service}")
    main = containers[service]
    inits = {c["name"]: c for c in pod.get("initContainers", [])}
    if "migrate" not in inits:
        raise ContractError(f"Deployment {deployment['metadata']['name']} has no migrate init container")
    http = [p["containerPort"] for p in main.get("ports", []) if p.get("name") == "http"]
    if not http:
        raise ContractError(f"{service}: no container port named http")
    port = http[0]
    env = resolve_env(manifests, main, secrets)
    migrate_env = resolve_env(manifests, inits["migrate"], secrets)
    if migrate_env != env:
        raise ContractError(f"{service}: the migrate init container's environment differs from the service's")

    sts = _database_statefulset(manifests, env)
    if sts is not None:
        database = _chart_database(manifests, sts, secrets)
    else:
        missing = [k for k in ("PGDATABASE", "PGUSER", "PGPASSWORD") if k not in env]
        if missing:
            raise ContractError(f"{service}: external database but {missing} not set")
        database = DatabaseSpec(env["PGDATABASE"], env["PGUSER"], env["PGPASSWORD"])

    startup = main.get("startupProbe") or {}
    contract = ServiceContract(
        service=service,
        migrate_argv=list(inits["migrate"].get("command", [])) + list(inits["migrate"].get("args", [])),
        serve_argv=list(main.get("command", [])) + list(main.get("args", [])),
        env=env,
        container_port=port,
        probes={kind: _probe_path(main, f"{kind}Probe", port) for kind in ("startup", "liveness", "readiness")},
        startup_budget=_probe_budget(startup),
        grace_period=float(pod.get("terminationGracePeriodSeconds", 30)),
        database=database,
        deployment=deployment,
        database_statefulset=sts,
        secret_data=lambda name, key: _secret_value(manifests, secrets, name, key),
    )
    test_pod = _find(manifests, "Pod", f"{deployment['metadata']['name']}-test")
    if test_pod is not None:
        (smoke,) = test_pod["spec"]["containers"]
        contract.smoke_argv = list(smoke.get("command", [])) + list(smoke.get("args", []))
        contract.service_url = _service_url(manifests, deployment, port)
        contract.test_pod = test_pod
    return contract


def _probe_budget(probe: Mapping) -> float:
    """Seconds a probe allows before it gives up: initialDelaySeconds + periodSeconds x failureThreshold."""
    return probe.get("initialDelaySeconds", 0) + probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)


def _service_url(manifests: list[dict], deployment: dict, port: int) -> str:
    """The in-cluster URL of the Service that selects this Deployment's pods on the http port."""
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    for svc in manifests:
        if svc["kind"] != "Service" or not svc["spec"].get("selector"):
            continue
        if svc["spec"]["selector"].items() <= labels.items():
            for p in svc["spec"]["ports"]:
                if p.get("targetPort") in ("http", port):
                    return f"http://{svc['metadata']['name']}:{p['port']}"
    raise ContractError(f"no Service routes to Deployment {deployment['metadata']['name']} on port http")


# -- what the sandbox stands in for the images ---------------------------------------------------

# The python:3.11-slim-bookworm base image's ENV the service images inherit (PATH, LANG).
BASE_IMAGE_ENV = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
_BASE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SERVICES_DIR = os.path.join(sb.REPO_ROOT, "services")


def service_dockerfile(service: str) -> str | None:
    """The recipe that builds atlas/<service>: services/<service>/Dockerfile, else the shared services/Dockerfile."""
    for path in (os.path.join(SERVICES_DIR, service, "Dockerfile"), os.path.join(SERVICES_DIR, "Dockerfile")):
        if os.path.isfile(path):
            return path
    return None


def dockerfile_runtime(path: str, build_args: Mapping[str, str]) -> tuple[dict[str, str], str | None]:
    """ENV (the base image's, then the final stage's, $VAR/${VAR} expanded) and USER of the final stage."""
    with open(path) as f:
        text = re.sub(r"\\\n", " ", f.read())
    stage = re.split(r"^FROM\s", text, flags=re.MULTILINE)[-1]
    env, user = dict(BASE_IMAGE_ENV), None
    scope = dict(build_args)

    def expand(value: str) -> str:
        return re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), scope.get(m.group(1), "")), value.strip("\"'"))

    for line in stage.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "ENV":
            pairs = shlex.split(rest)
            items = [p.split("=", 1) for p in pairs] if all("=" in p for p in pairs) else [rest.split(None, 1)]
            for key, value in items:
                env[key] = expand(value)
        elif word == "USER":
            user = expand(rest.strip())
    return env, user


def service_image(service: str) -> sb.Image:
    """atlas/<service> as its Dockerfile builds it (ENV, USER), /opt/venv being this checkout's .venv."""
    path = service_dockerfile(service)
    if path is None:
        raise ContractError(f"no Dockerfile for {service} under {SERVICES_DIR}: no image to stand in for")
    env, user = dockerfile_runtime(path, {"SERVICE": service})
    venv_bin = os.path.dirname(sys.executable)
    env["PATH"] = ":".join(venv_bin if p == "/opt/venv/bin" else p for p in env["PATH"].split(":"))
    if user is None or not re.fullmatch(r"\d+(:\d+)?", user):
        raise ContractError(f"{path}: USER {user!r} is not numeric (runAsNonRoot cannot verify it)")
    uid, _, gid = user.partition(":")
    return sb.Image(
        name=f"atlas/{service} (stand-in: this .venv, ENV and USER from {os.path.relpath(path, sb.REPO_ROOT)})",
        env=env,
        uid=int(uid),
        gid=int(gid or uid),
        dirs={"/tmp": (0o1777, 0, 0)},
    )


def postgres_image() -> sb.Image:
    """postgres:17.6-alpine: Debian's server binaries for /usr/local/bin, the entrypoint emulated."""
    return sb.Image(
        name="postgres:17.6-alpine (stand-in: Debian's PostgreSQL binaries)",
        env={"PATH": f"{_bindir()}:{_BASE_PATH}", "LANG": "C.UTF-8", "PGDATA": "/var/lib/postgresql/data"},
        uid=0,
        gid=0,
        entrypoint=(sys.executable, "-I", PG_ENTRYPOINT, "--loopback-clients-are-remote"),
        cmd=("postgres",),
        dirs={
            "/docker-entrypoint-initdb.d": (0o755, 0, 0),
            "/var/lib/postgresql": (0o1777, 70, 70),
            "/var/lib/postgresql/data": (0o1777, 70, 70),
            "/var/run/postgresql": (0o3777, 70, 70),
            "/tmp": (0o1777, 0, 0),
        },
        passwd=(
            "root:x:0:0:root:/root:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/:/sbin/nologin\n"
            "postgres:x:70:70::/var/lib/postgresql:/bin/sh\n"
        ),
        group="root:x:0:root\nnobody:x:65534:\npostgres:x:70:\n",
        stop_signal=signal.SIGINT,
    )


def image_for(reference: str) -> sb.Image:
    repository = reference.rsplit("@", 1)[0]
    repository = repository.rsplit(":", 1)[0] if ":" in repository.rsplit("/", 1)[-1] else repository
    owner, _, service = repository.rpartition("/")
    # atlas/<service> for every service package of the checkout (services/<name>/<name>/): a new one is data.
    if owner.endswith("atlas") and os.path.isfile(os.path.join(SERVICES_DIR, service, service, "__init__.py")):
        return service_image(service)
    if repository.split("/")[-1] == "postgres":
        return postgres_image()
    raise ContractError(f"no stand-in for image {reference!r} in the sandbox")


def container_argv(container: Mapping, image: sb.Image) -> list[str]:
    """What the runtime executes: command replaces the image's ENTRYPOINT, args its CMD."""
    command, args = container.get("command"), container.get("args")
    if command:
        return [*command, *(args or [])]
    return [*image.entrypoint, *(args if args is not None else image.cmd)]


# -- running it ----------------------------------------------------------------------------------


def provision_database(server, spec: DatabaseSpec) -> None:
    """Create the role and database an external database would have (idempotently), on ``server``."""
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(spec.database)))
        # The role may own other databases of earlier runs: keep it, set this run's password.
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (spec.user,))
        verb = "ALTER" if cur.fetchone() else "CREATE"
        cur.execute(sql.SQL(verb + " ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(spec.user)), (spec.password,))
        cur.execute(
            sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(spec.database), sql.Identifier(spec.user))
        )
    conn.close()


@dataclass
class ContractResult:
    service: str
    migrate_seconds: list[float] = field(default_factory=list)  # first run, second (idempotent) run
    startup_seconds: float = 0.0  # until the startup probe path answered 200
    probe_status: dict[str, int] = field(default_factory=dict)
    smoke_output: str = ""
    stop_seconds: float = 0.0  # SIGTERM to exit
    sandboxed: bool = False
    notes: list[str] = field(default_factory=list)  # what was not enforced, and why
    # Seen from the host while the containers ran (sandboxed runs only), keyed by container name:
    status: dict[str, dict] = field(default_factory=dict)  # /proc/<pid>/status of the main process
    writable: dict[str, list[str]] = field(default_factory=dict)  # mount points it could write
    memory_peak: dict[str, int] = field(default_factory=dict)  # bytes (memory cgroup), per run
    database_startup_seconds: float | None = None  # chart database: until its startup probe passed


@dataclass
class ChartDatabase:
    """The chart's PostgreSQL for one service, running in the sandbox on a loopback port."""

    statefulset: str
    host: str
    port: int
    spec: DatabaseSpec
    pod: sb.Pod
    running: sb.Running
    startup_seconds: float
    status: dict
    writable: list[str]
    memory_peak: int | None = None  # bytes, known once the server has stopped


def _rewrite_port(argv: list[str], container_port: int, port: int, where: str) -> list[str]:
    out, found = list(argv), False
    for i, arg in enumerate(out[:-1]):
        if arg in ("--port", "-p") and out[i + 1] == str(container_port):
            out[i + 1], found = str(port), True
    if not found:
        raise ContractError(f"{where}: {argv} does not name the container port {container_port}")
    return out


def _failure(container: sb.Container, what: str, description: str, log: str) -> ContractError:
    diagnosis = container.diagnose(log)
    return ContractError(f"{what} {description}:\n{diagnosis + chr(10) if diagnosis else ''}{log[-4000:]}")


@contextlib.contextmanager
def chart_database(
    manifests: list[dict], statefulset: dict, secrets: Mapping[str, Mapping[str, str]] | None = None
) -> Iterator[ChartDatabase]:
    """Run the rendered StatefulSet's PostgreSQL in the sandbox until its startup probe passes; stop it after."""
    secrets = secrets or {}
    name = statefulset["metadata"]["name"]
    spec = statefulset["spec"]["template"]["spec"]
    pg = database_container(spec)
    image = image_for(pg["image"])
    tcp = [p["containerPort"] for p in pg.get("ports", []) if p.get("protocol", "TCP") == "TCP"]
    if not tcp:
        raise ContractError(f"StatefulSet {name}: the PostgreSQL container declares no TCP port")
    port = free_port()
    try:
        pod = sb.Pod(
            f"{name}-0",
            spec,
            volume_claims=statefulset["spec"].get("volumeClaimTemplates") or [],
            secret_data=lambda secret, key: _secret_value(manifests, secrets, secret, key),
            config_map_data=lambda cm: _config_map_data(manifests, cm),
        )
        container = pod.container(pg, image)
    except sb.SandboxError as exc:
        raise ContractError(f"StatefulSet {name}: {exc}") from exc
    with pod:
        env = {**image.env, **resolve_env(manifests, pg, secrets)}
        # The one rewrite of the server's own settings: where it listens (arguments, as `docker run` would pass).
        argv = [*container_argv(pg, image), "-c", "listen_addresses=127.0.0.1", "-p", str(port)]
        started = time.monotonic()
        running = container.start(argv, env)
        db = None
        try:
            probe = pg.get("startupProbe") or pg.get("readinessProbe")
            if not probe or "exec" not in probe:
                raise ContractError(f"StatefulSet {name}: no exec startup/readiness probe to wait on")
            probe_argv = _rewrite_port(probe["exec"]["command"], tcp[0], port, f"StatefulSet {name} probe")
            budget = _probe_budget(probe)

            def ready() -> bool:
                if running.poll() is not None:
                    raise _failure(
                        container, f"database {container.label}", running.exit_description(), running.logs(None)
                    )
                # The exec probe decides; it is only worth spawning once the port accepts connections.
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) != 0:
                        return False
                return running.exec(probe_argv, env, timeout=probe.get("timeoutSeconds", 1) + 5).returncode == 0

            try:
                wait_until(ready, timeout=budget, interval=0.1)
            except TimeoutError:
                raise ContractError(
                    f"database {container.label}: startup probe {probe_argv} not passing within {budget}s:\n"
                    f"{running.logs()}"
                ) from None
            startup = time.monotonic() - started
            for kind in ("livenessProbe", "readinessProbe"):
                if "exec" in (pg.get(kind) or {}):
                    check = _rewrite_port(pg[kind]["exec"]["command"], tcp[0], port, f"StatefulSet {name} {kind}")
                    done = running.exec(check, env, timeout=pg[kind].get("timeoutSeconds", 1) + 5)
                    if done.returncode != 0:
                        raise ContractError(f"database {container.label}: {kind} {check} failed:\n{done.output}")
            db = ChartDatabase(
                statefulset=name,
                host="127.0.0.1",
                port=port,
                spec=_chart_database(manifests, statefulset, secrets),
                pod=pod,
                running=running,
                startup_seconds=startup,
                status=running.status(),
                writable=running.writable_mounts(),
            )
            yield db
        finally:
            try:
                running.stop(grace=float(spec.get("terminationGracePeriodSeconds", 30)))
            except sb.SandboxError as exc:
                raise ContractError(str(exc)) from exc
            if db is not None:
                db.memory_peak = running.memory_peak


class _Plain:
    """The fallback where the machine cannot sandbox: the command as the current user, a private /tmp."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir

    def env(self, contract: ServiceContract, base: Mapping[str, str]) -> dict[str, str]:
        env = {
            # The venv's executables first, so `python`/`gunicorn` in the rendered command resolve as in the image.
            "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")]),
            "HOME": self.workdir,
            "LANG": "C.UTF-8",
            "TMPDIR": self.workdir,
            **base,
        }
        # The pod's /tmp is private; the same directory name goes under this run's own tmp.
        metrics = os.path.basename(contract.env.get("PROMETHEUS_MULTIPROC_DIR", "/tmp/atlas-metrics"))
        env["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(self.workdir, metrics)
        return env

    def _which(self, argv: list[str], env: Mapping[str, str]) -> list[str]:
        executable = shutil.which(argv[0], path=env["PATH"])
        if executable is None:
            raise ContractError(f"command {argv[0]!r} not found (rendered command {argv})")
        return [executable, *argv[1:]]

    def run(self, argv: list[str], env: Mapping[str, str], timeout: float) -> sb.Completed:
        proc = subprocess.run(
            self._which(argv, env), env=dict(env), cwd=self.workdir, capture_output=True, text=True, timeout=timeout
        )
        return sb.Completed(proc.returncode, proc.stdout + proc.stderr, f"exited {proc.returncode}")

    def start(self, argv: list[str], env: Mapping[str, str]) -> _PlainRunning:
        log_path = os.path.join(self.workdir, "serve.log")
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                self._which(argv, env), env=dict(env), cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT
            )
        return _PlainRunning(proc, log_path)


class _PlainRunning:
    def __init__(self, proc: subprocess.Popen, log_path: str) -> None:
        self.proc = proc
        self.log_path = log_path

    def poll(self) -> int | None:
        return self.proc.poll()

    def logs(self, limit: int | None = 4000) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        return text if limit is None else text[-limit:]

    def exit_description(self) -> str:
        return f"exited {self.proc.returncode}"

    def oom_kills(self) -> int:
        return 0  # no memory limit without the sandbox

    def stop(self, grace: float) -> float:
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise sb.SandboxError(f"ignored SIGTERM for {grace}s") from None
        return time.monotonic() - start


def run_contract(
    manifests: list[dict],
    service: str,
    server=None,
    *,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    smoke: bool = True,
    startup_timeout: float | None = None,
    sandbox: bool | None = None,
) -> ContractResult:
    """Run one service's rendered contract; see the module docstring.

    ``server`` (a tests.support.postgres.PostgresServer) serves an external database, and every database
    when the machine cannot sandbox. ``startup_timeout`` caps the wait for the startup probe (default: the
    rendered probe's own budget). ``sandbox``: None runs sandboxed when the machine allows it, True requires
    it, False runs unsandboxed. Raises ContractError (an AssertionError) naming the first disagreement.
    """
    contract = service_contract(manifests, service, secrets)
    if startup_timeout is not None:
        contract.startup_budget = min(contract.startup_budget, startup_timeout)
    reason = sb.unavailable_reason() if sandbox is not False else "sandbox=False"
    if reason is not None and sandbox:
        raise ContractError(f"the sandbox was required but cannot run here: {reason}")
    result = ContractResult(service=service, sandboxed=reason is None)
    if reason is None:
        _run_sandboxed(manifests, contract, server, secrets or {}, smoke, result)
    else:
        note = f"NOT sandboxed ({reason}): containers ran as uid {os.geteuid()} with a writable filesystem"
        result.notes.append(note)
        warnings.warn(f"contract {service}: {note}", stacklevel=2)
        _run_plain(contract, server, smoke, result)
    return result


def _need_server(server, contract: ServiceContract):
    if server is None:
        raise ContractError(f"{contract.service}: a PostgreSQL server= is needed for this database")
    return server


def _run_sandboxed(
    manifests: list[dict], contract: ServiceContract, server, secrets, smoke: bool, result: ContractResult
) -> None:
    port = free_port()
    bind_env = _bind_env(contract, port)  # before anything starts: a wrong port fails at once
    with contextlib.ExitStack() as stack:
        if contract.database_statefulset is not None:
            databases: list[ChartDatabase] = []

            def record() -> None:  # registered first, so it runs after the database has stopped
                for db in databases:
                    result.notes.extend([*db.pod.notes, *db.running.container.notes])
                    if db.memory_peak is not None:
                        result.memory_peak[db.running.container.name] = db.memory_peak

            stack.callback(record)
            db = stack.enter_context(chart_database(manifests, contract.database_statefulset, secrets))
            databases.append(db)
            db_host, db_port = db.host, db.port
            result.database_startup_seconds = db.startup_seconds
            name = db.running.container.name
            result.status[name], result.writable[name] = db.status, db.writable
        else:
            external = _need_server(server, contract)
            provision_database(external, contract.database)
            db_host, db_port = external.host, external.port

        deployment = contract.deployment["metadata"]["name"]
        image = image_for(contract.container(contract.service)["image"])
        init = contract.container("migrate", init=True)
        try:
            pod = stack.enter_context(
                sb.Pod(f"{deployment}-sandbox", contract.pod_spec, secret_data=contract.secret_data)
            )
            migrate = pod.container(init, image_for(init["image"]))
            main = pod.container(contract.container(contract.service), image)
        except sb.SandboxError as exc:
            raise ContractError(f"Deployment {deployment}: {exc}") from exc
        env = {
            **image.env,
            **bind_env,
            "PGHOST": db_host,
            "PGPORT": str(db_port),
        }
        for attempt in (1, 2):
            start = time.monotonic()
            done = migrate.run(container_argv(migrate.spec, migrate.image), env, timeout=120)
            result.migrate_seconds.append(time.monotonic() - start)
            if done.memory_peak is not None:
                result.memory_peak[f"migrate#{attempt}"] = done.memory_peak
            if done.returncode != 0:
                raise _failure(
                    migrate, f"migration {contract.migrate_argv} ({migrate.label})", done.description, done.output
                )

        def smoke_run(base_url: str) -> str:
            return _smoke_sandboxed(manifests, contract, secrets, base_url, result)

        running = main.start(container_argv(main.spec, image), env)
        try:
            _serve(contract, running, port, result, main, smoke_run if smoke else None)
        finally:
            if running.memory_peak is not None:
                result.memory_peak[main.name] = running.memory_peak
            result.notes.extend([*pod.notes, *migrate.notes, *main.notes])


def _bind_env(contract: ServiceContract, port: int) -> dict[str, str]:
    bind = contract.env.get("ATLAS_BIND", "")
    if not bind.endswith(f":{contract.container_port}"):
        raise ContractError(f"ATLAS_BIND {bind!r} does not listen on the container port {contract.container_port}")
    return {**contract.env, "ATLAS_BIND": f"127.0.0.1:{port}"}


def _smoke_argv(contract: ServiceContract, base_url: str) -> list[str]:
    """The `helm test` pod's command with its in-cluster URL pointed at the local service."""
    argv = list(contract.smoke_argv)
    urls = [i for i, arg in enumerate(argv) if arg.startswith(("http://", "https://"))]
    if not urls or argv[urls[-1]] != contract.service_url:
        raise ContractError(f"helm test command does not call the service's URL {contract.service_url}: {argv[-1]!r}")
    argv[urls[-1]] = base_url + urlsplit(argv[urls[-1]]).path.rstrip("/")
    return argv


def _smoke_sandboxed(manifests, contract: ServiceContract, secrets, base_url: str, result: ContractResult) -> str:
    test_pod = contract.test_pod
    (smoke,) = test_pod["spec"]["containers"]
    image = image_for(smoke["image"])
    argv = _smoke_argv(contract, base_url)
    try:
        with sb.Pod(test_pod["metadata"]["name"], test_pod["spec"]) as pod:
            container = pod.container(smoke, image)
            env = {**image.env, **resolve_env(manifests, smoke, secrets)}
            done = container.run(argv, env, timeout=60)
            result.notes.extend([*pod.notes, *container.notes])
    except sb.SandboxError as exc:
        raise ContractError(f"Pod {test_pod['metadata']['name']}: {exc}") from exc
    if done.memory_peak is not None:
        result.memory_peak[smoke["name"]] = done.memory_peak
    if done.returncode != 0:
        raise _failure(container, f"helm test command ({container.label})", done.description, done.output)
    return done.output


def _run_plain(contract: ServiceContract, server, smoke: bool, result: ContractResult) -> None:
    provision_database(_need_server(server, contract), contract.database)
    workdir = tempfile.mkdtemp(prefix=f"atlas-contract-{contract.service}-")
    runner = _Plain(workdir)
    port = free_port()
    env = runner.env(contract, {**_bind_env(contract, port), "PGHOST": server.host, "PGPORT": str(server.port)})
    try:
        for _ in range(2):
            start = time.monotonic()
            done = runner.run(contract.migrate_argv, env, timeout=120)
            result.migrate_seconds.append(time.monotonic() - start)
            if done.returncode != 0:
                raise ContractError(f"migration {contract.migrate_argv} {done.description}:\n{done.output}")

        def smoke_run(base_url: str) -> str:
            done = runner.run(_smoke_argv(contract, base_url), env, timeout=60)
            if done.returncode != 0:
                raise ContractError(f"helm test command failed ({done.returncode}):\n{done.output}")
            return done.output

        running = runner.start(contract.serve_argv, env)
        _serve(contract, running, port, result, None, smoke_run if smoke and contract.smoke_argv else None)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _serve(contract: ServiceContract, running, port: int, result: ContractResult, container, smoke_run) -> None:
    """Wait for the startup probe, check the probes, run the smoke command, stop the service."""
    base = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    try:

        def failed(what: str, log: str) -> ContractError:
            if container is not None:
                return _failure(container, what, running.exit_description(), log)
            return ContractError(f"{what} {running.exit_description()}:\n{log}")

        def started_ok() -> bool:
            if running.poll() is not None:
                raise failed(f"{contract.serve_argv}", running.logs(None))
            try:
                return requests.get(base + contract.probes["startup"], timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        try:
            wait_until(started_ok, timeout=contract.startup_budget, interval=0.05)
        except TimeoutError:
            raise ContractError(
                f"startup probe {contract.probes['startup']} not 200 within {contract.startup_budget}s:\n"
                f"{running.logs()}"
            ) from None
        result.startup_seconds = time.monotonic() - started
        if container is not None:
            result.status[container.name] = running.status()
            result.writable[container.name] = running.writable_mounts()
        errors = {}
        for kind in ("startup", "liveness", "readiness"):
            try:
                result.probe_status[kind] = requests.get(base + contract.probes[kind], timeout=5).status_code
            except requests.RequestException as exc:
                result.probe_status[kind], errors[kind] = 0, exc
        bad = {k: v for k, v in result.probe_status.items() if v != 200}
        if bad:
            oom = running.oom_kills()
            killed = f"{oom} OOM kill(s) at the memory limit; " if oom else ""
            raise ContractError(
                f"probes not 200: { {k: (contract.probes[k], v or str(errors[k])) for k, v in bad.items()} }\n"
                f"{killed}{running.logs()}"
            )
        if smoke_run is not None and contract.smoke_argv:
            result.smoke_output = smoke_run(base)
    finally:
        try:
            result.stop_seconds = running.stop(grace=contract.grace_period)
        except sb.SandboxError:
            raise ContractError(f"{contract.service} ignored SIGTERM for {contract.grace_period}s") from None
