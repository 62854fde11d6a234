"""The contract between the chart and the services, executed: rendered Deployments run locally.

Given the manifests `helm template` rendered, ``run_contract`` takes one service's Deployment, resolves
its environment exactly as the kubelet would (ConfigMap via envFrom, Secret via secretKeyRef; Secrets
the chart does not render, e.g. existingSecret, are passed in), creates the database the way the
chart's PostgreSQL would (POSTGRES_USER / POSTGRES_DB / password file of the rendered StatefulSet),
and then, against a real PostgreSQL:

1. runs the init container's command (the migration) twice: it must succeed and be idempotent;
2. runs the main container's command and waits for the startup probe's path within the probe's budget;
3. asserts the liveness and readiness paths answer 200;
4. runs the `helm test` pod's command against the running service.

Only what cannot be true outside a pod is rewritten: PGHOST/PGPORT (the test server), the listen
address (a free loopback port, after checking it matches the container port) and the private /tmp
(a per-run directory, as the pod's emptyDir is). A renamed variable, command, port or probe path on
either side makes it fail. The Molecule render-mode verify calls ``run_contract`` too.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests
from psycopg2 import sql

from .net import free_port
from .postgres import wait_until


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


def _probe_path(container: dict, kind: str, port: int) -> str:
    probe = container.get(kind)
    if not probe or "httpGet" not in probe:
        raise ContractError(f"{container['name']}: no HTTP {kind}")
    target = probe["httpGet"]["port"]
    named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    if named.get(target, target) != port:
        raise ContractError(f"{container['name']}: {kind} port {target!r} is not the container port {port}")
    return probe["httpGet"]["path"]


def _chart_database(manifests: list[dict], env: Mapping[str, str], secrets) -> DatabaseSpec | None:
    """The database as the rendered StatefulSet initialises it, checked against what the service uses."""
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
    pod = sts["spec"]["template"]["spec"]
    (pg,) = pod["containers"]
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

    database = _chart_database(manifests, env, secrets)
    if database is None:
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
        startup_budget=startup.get("initialDelaySeconds", 0)
        + startup.get("periodSeconds", 10) * startup.get("failureThreshold", 3),
        grace_period=float(pod.get("terminationGracePeriodSeconds", 30)),
        database=database,
    )
    test_pod = _find(manifests, "Pod", f"{deployment['metadata']['name']}-test")
    if test_pod is not None:
        (smoke,) = test_pod["spec"]["containers"]
        contract.smoke_argv = list(smoke.get("command", [])) + list(smoke.get("args", []))
        contract.service_url = _service_url(manifests, deployment, port)
    return contract


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


# -- running it ----------------------------------------------------------------------------------


def provision_database(server, spec: DatabaseSpec) -> None:
    """Create the role and database as the chart's PostgreSQL entrypoint would (idempotently)."""
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


def _process_env(contract: ServiceContract, server, bind_port: int, private_tmp: str) -> dict[str, str]:
    bind = contract.env.get("GUNICORN_BIND", "")
    if not bind.endswith(f":{contract.container_port}"):
        raise ContractError(f"GUNICORN_BIND {bind!r} does not listen on the container port {contract.container_port}")
    env = {
        # The venv's executables first, so `python`/`gunicorn` in the rendered command resolve as in the image.
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")]),
        "HOME": private_tmp,
        "LANG": "C.UTF-8",
        "TMPDIR": private_tmp,
        "PROMETHEUS_MULTIPROC_DIR": os.path.join(private_tmp, "atlas-metrics"),
    }
    env.update(contract.env)
    env.update(PGHOST=server.host, PGPORT=str(server.port), GUNICORN_BIND=f"127.0.0.1:{bind_port}")
    if "PROMETHEUS_MULTIPROC_DIR" in contract.env:
        # The pod's /tmp is private; the same directory name goes under this run's own tmp.
        env["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(
            private_tmp, os.path.basename(contract.env["PROMETHEUS_MULTIPROC_DIR"])
        )
    return env


def _run(argv: list[str], env: dict[str, str], cwd: str, timeout: float) -> subprocess.CompletedProcess:
    executable = shutil.which(argv[0], path=env["PATH"])
    if executable is None:
        raise ContractError(f"command {argv[0]!r} not found (rendered command {argv})")
    return subprocess.run([executable, *argv[1:]], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def run_contract(
    manifests: list[dict],
    service: str,
    server,
    *,
    secrets: Mapping[str, Mapping[str, str]] | None = None,
    smoke: bool = True,
    startup_timeout: float | None = None,
) -> ContractResult:
    """Run one service's rendered contract against ``server`` (a tests.support.postgres.PostgresServer).

    ``startup_timeout`` caps the wait for the startup probe (default: the rendered probe's own budget).
    Raises ContractError (an AssertionError) naming the first disagreement.
    """
    contract = service_contract(manifests, service, secrets)
    if startup_timeout is not None:
        contract.startup_budget = min(contract.startup_budget, startup_timeout)
    provision_database(server, contract.database)
    result = ContractResult(service=service)
    workdir = tempfile.mkdtemp(prefix=f"atlas-contract-{service}-")
    port = free_port()
    env = _process_env(contract, server, port, workdir)
    try:
        for _ in range(2):
            start = time.monotonic()
            proc = _run(contract.migrate_argv, env, workdir, timeout=120)
            result.migrate_seconds.append(time.monotonic() - start)
            if proc.returncode != 0:
                raise ContractError(f"migration {contract.migrate_argv} exited {proc.returncode}:\n{proc.stderr}")
        _serve(contract, env, workdir, port, result)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


def _serve(contract: ServiceContract, env: dict[str, str], workdir: str, port: int, result: ContractResult) -> None:
    executable = shutil.which(contract.serve_argv[0], path=env["PATH"])
    if executable is None:
        raise ContractError(f"command {contract.serve_argv[0]!r} not found (rendered command {contract.serve_argv})")
    base = f"http://127.0.0.1:{port}"
    log_path = os.path.join(workdir, "serve.log")
    with open(log_path, "wb") as log:
        started = time.monotonic()
        proc = subprocess.Popen(
            [executable, *contract.serve_argv[1:]], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
        )
    try:

        def logs() -> str:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                return f.read()[-4000:]

        def started_ok() -> bool:
            if proc.poll() is not None:
                raise ContractError(f"{contract.serve_argv} exited {proc.returncode}:\n{logs()}")
            try:
                return requests.get(base + contract.probes["startup"], timeout=1).status_code == 200
            except requests.ConnectionError:
                return False

        try:
            wait_until(started_ok, timeout=contract.startup_budget, interval=0.05)
        except TimeoutError:
            raise ContractError(
                f"startup probe {contract.probes['startup']} not 200 within {contract.startup_budget}s:\n{logs()}"
            ) from None
        result.startup_seconds = time.monotonic() - started
        for kind in ("startup", "liveness", "readiness"):
            result.probe_status[kind] = requests.get(base + contract.probes[kind], timeout=5).status_code
        bad = {k: v for k, v in result.probe_status.items() if v != 200}
        if bad:
            raise ContractError(f"probes not 200: { {k: (contract.probes[k], v) for k, v in bad.items()} }\n{logs()}")
        if contract.smoke_argv:
            result.smoke_output = _smoke(contract, env, workdir, base)
    finally:
        start = time.monotonic()
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=contract.grace_period)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise ContractError(f"{contract.service} ignored SIGTERM for {contract.grace_period}s") from None
        result.stop_seconds = time.monotonic() - start


def _smoke(contract: ServiceContract, env: dict[str, str], workdir: str, base: str) -> str:
    """Run the `helm test` pod's command with its in-cluster URL pointed at the local service."""
    argv = list(contract.smoke_argv)
    urls = [i for i, arg in enumerate(argv) if arg.startswith(("http://", "https://"))]
    if not urls or argv[urls[-1]] != contract.service_url:
        raise ContractError(f"helm test command does not call the service's URL {contract.service_url}: {argv[-1]!r}")
    argv[urls[-1]] = base + urlsplit(argv[urls[-1]]).path.rstrip("/")
    proc = _run(argv, env, workdir, timeout=60)
    if proc.returncode != 0:
        raise ContractError(f"helm test command failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout
