"""Every numeric setting of every service, at both ends of its range, through the real chart and container.

The settings come from the services' declarations (tests/contract/declared.py), so a new setting is
tested without touching this file. For each one:

- at its minimum and at its maximum (a setting without maximum: 10**9), `helm template` renders it and the
  rendered pod runs as the kubelet would (tests/support/sandbox.py via tests/support/contract.py's pieces):
  the `migrate` init container exits 0, then the service container answers its startup path (/livez) and
  /readyz with 200 against a real PostgreSQL, and its /db-status and worker count show the value took;
- one step past each end (an integer 1, a number 0.01) is refused by helm's schema, naming the key.

To stay fast, the services share one database per service and xdist worker (migrated by the first
case's init container; the others find it up to date), and gunicorn runs only until the probes answer
(then SIGKILL: tests/contract/test_chart_service_contract.py proves the graceful stop).
Values the chart's own cross-key checks need are set alongside (`_companions`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest
import requests
from atlas_common.config import Settings

from tests.contract.declared import Setting, deploy_values, numeric_settings, secret_files
from tests.support import sandbox as sb
from tests.support.chart import render, render_error
from tests.support.contract import (
    DatabaseSpec,
    ServiceContract,
    container_argv,
    image_for,
    provision_database,
    service_contract,
)
from tests.support.net import free_port
from tests.support.postgres import wait_until

SETTINGS = numeric_settings()
PASSWORD = "boundary-password"  # pragma: allowlist secret - a throwaway test database


def _database(service: str) -> DatabaseSpec:
    # A name no other contract test uses: they drop and recreate theirs on the same server.
    return DatabaseSpec(f"boundary_{service}", f"boundary_{service}", PASSWORD)


def _base_values(service: str) -> dict:
    db = _database(service)
    return {
        **deploy_values(service),
        f"{service}.postgresql.auth.database": db.database,
        f"{service}.postgresql.auth.username": db.user,
        f"{service}.postgresql.auth.existingSecret": f"atlas-{service}-db",
    }


def _secrets(service: str) -> dict:
    return {f"atlas-{service}-db": {"password": PASSWORD}, **secret_files(service)}


def _companions(setting: Setting, value: float) -> dict:
    """Other values the case needs to pass the chart's checks across keys."""
    d, extra = setting.declared, {}
    if d.follows is not None:  # e.g. poolSize >= threads: bring the followed setting down to the value
        followed = setting.sibling(d.follows)
        extra[setting.sibling_key(d.follows)] = min(followed.default, value)
    if d.chart == "gracefulTimeout":  # _validate.tpl: terminationGracePeriodSeconds > preStopSleepSeconds + it
        extra[f"{setting.service}.terminationGracePeriodSeconds"] = int(value) + 10
    return extra


@pytest.fixture(scope="module")
def databases(postgres_server):
    """One database per service on this worker's server, created once; migrated by the first case."""
    for service in {s.service for s in SETTINGS}:
        provision_database(postgres_server, _database(service))
    return postgres_server


# -- running one rendered pod -------------------------------------------------------------------


def _env(contract: ServiceContract, server, port: int) -> dict[str, str]:
    bind = contract.env["ATLAS_BIND"]
    assert bind.endswith(f":{contract.container_port}"), f"ATLAS_BIND {bind} is not the container port"
    return {**contract.env, "ATLAS_BIND": f"127.0.0.1:{port}", "PGHOST": server.host, "PGPORT": str(server.port)}


class _Plain:
    """Where the machine cannot sandbox: the same commands as this user, with a private /tmp."""

    def __init__(self) -> None:
        self.workdir = tempfile.mkdtemp(prefix="atlas-boundary-")

    def env(self, env: dict[str, str]) -> dict[str, str]:
        bin_dir = os.path.dirname(sys.executable)
        metrics = os.path.join(self.workdir, "metrics")
        return {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": self.workdir, **env, "PROMETHEUS_MULTIPROC_DIR": metrics}

    def migrate(self, argv: list[str], env: dict[str, str]) -> tuple[int, str]:
        argv = [shutil.which(argv[0], path=env["PATH"]), *argv[1:]]
        done = subprocess.run(argv, env=env, cwd=self.workdir, capture_output=True, text=True, timeout=120)
        return done.returncode, done.stdout + done.stderr

    def logs(self) -> str:
        with open(self.log, encoding="utf-8", errors="replace") as f:
            return f.read()[-4000:]

    def start(self, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        argv = [shutil.which(argv[0], path=env["PATH"]), *argv[1:]]
        self.log = os.path.join(self.workdir, "serve.log")
        with open(self.log, "wb") as log:
            return subprocess.Popen(
                argv, env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )


def _secret_files_here(contract: ServiceContract, workdir: str) -> dict[str, str]:
    """Without the sandbox: the main container's secret volumes written under ``workdir``, and the variables
    that pointed into their mount paths pointed there instead."""
    volumes = {v["name"]: v["secret"] for v in contract.pod_spec.get("volumes", []) if "secret" in v}
    moved = {}
    for mount in contract.container(contract.service).get("volumeMounts", []):
        secret = volumes.get(mount["name"])
        if secret is None:
            continue
        here = os.path.join(workdir, "secrets", mount["name"])
        os.makedirs(here)
        for item in secret["items"]:
            with open(os.path.join(here, item["path"]), "w") as f:
                f.write(contract.secret_data(secret["secretName"], item["key"]))
        moved[mount["mountPath"]] = here
    return {
        name: value.replace(mount, here, 1)
        for name, value in contract.env.items()
        for mount, here in moved.items()
        if value.startswith(mount + "/")
    }


def _children(pid: int) -> int:
    """Live processes whose parent is ``pid`` (gunicorn's workers)."""
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            count += fields[1] == str(pid) and fields[0] != "Z"
    return count


class _PortTaken(Exception):
    """Another process (another xdist worker's server) holds the free port picked for this one."""


def _listener_inodes(port: int) -> set[str]:
    """Socket inodes listening on 127.0.0.1:port (/proc/net/tcp: local address, state 0A, inode)."""
    inodes = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":
                inodes.add(fields[9])
    return inodes


def _holds(pid: int, inodes: set[str]) -> bool:
    """Whether ``pid`` or one of its children (the gunicorn master shares its socket with the workers) has one."""
    pids = [str(pid)] + [c for c in os.listdir("/proc") if c.isdigit() and _parent(c) == str(pid)]
    for each in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{each}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{each}/fd/{fd}").removeprefix("socket:[").rstrip("]") in inodes:
                        return True
    return False


def _parent(pid: str) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[1]
    except OSError:
        return None


def _serve(contract: ServiceContract, base: str, poll, logs, master_pid, workers: int) -> dict:
    """Wait for the startup path within the probe's budget, then check /readyz and what the service applied."""
    port = int(base.rsplit(":", 1)[1])

    def up() -> bool:
        if poll() is not None:
            raise AssertionError(f"{contract.serve_argv} exited {poll()}:\n{logs()}")
        try:
            if requests.get(base + contract.probes["startup"], timeout=1).status_code != 200:
                return False
        except requests.ConnectionError:
            return False
        if not _holds(master_pid(), _listener_inodes(port)):
            raise _PortTaken(port)  # the answer came from someone else: this server could not bind
        return True

    try:
        wait_until(up, timeout=contract.startup_budget, interval=0.05)
    except TimeoutError:
        budget = contract.startup_budget
        raise AssertionError(f"{contract.probes['startup']} not 200 within {budget}s:\n{logs()}") from None
    ready = requests.get(base + contract.probes["readiness"], timeout=5)
    assert ready.status_code == 200, ready.text
    pool = requests.get(base + "/db-status", timeout=5).json()["pool"]["size"]
    # gunicorn boots its workers one after another: the first may answer before the last is up. On a
    # timeout the caller's assertion says how many there were.
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: _children(master_pid()) >= workers, timeout=30, interval=0.1)
    return {"pool": pool, "workers": _children(master_pid())}


def _run(contract: ServiceContract, server, workers: int) -> dict:
    """The rendered pod's migrate init container, then its service container until the probes answer
    (again, on another port, when a parallel test took the free port first)."""
    for _ in range(3):
        try:
            return _run_once(contract, server, workers, free_port())
        except _PortTaken:
            continue
    raise AssertionError("three free ports in a row were taken by other processes")


def _run_once(contract: ServiceContract, server, workers: int, port: int) -> dict:
    env = _env(contract, server, port)
    base = f"http://127.0.0.1:{port}"
    init = contract.container("migrate", init=True)
    main = contract.container(contract.service)
    if sb.unavailable_reason() is None:
        image = image_for(main["image"])
        name = f"{contract.deployment['metadata']['name']}-boundary"
        with sb.Pod(name, contract.pod_spec, secret_data=contract.secret_data) as pod:
            done = pod.container(init, image_for(init["image"])).run(
                container_argv(init, image), {**image.env, **env}, timeout=120
            )
            assert done.returncode == 0, f"migrate {done.description}:\n{done.output}"
            running = pod.container(main, image).start(container_argv(main, image), {**image.env, **env})
            try:
                return _serve(contract, base, running.poll, running.logs, lambda: running.pid, workers)
            finally:
                # Started is all this test proves (the contract tests prove the graceful stop): SIGKILL,
                # and the sandbox kills what is left in the container's cgroup.
                running.stop(grace=contract.grace_period, sig=signal.SIGKILL)
    plain = _Plain()
    env = {**env, **_secret_files_here(contract, plain.workdir)}
    try:
        code, output = plain.migrate(contract.migrate_argv, plain.env(env))
        assert code == 0, f"migrate exited {code}:\n{output}"
        proc = plain.start(contract.serve_argv, plain.env(env))
        try:
            return _serve(contract, base, proc.poll, plain.logs, lambda: proc.pid, workers)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the master and its workers (a session of their own)
            proc.wait()
    finally:
        shutil.rmtree(plain.workdir, ignore_errors=True)


# -- the cases ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("end", ["minimum", "maximum"])
@pytest.mark.parametrize("setting", SETTINGS, ids=[s.id for s in SETTINGS])
def test_the_container_starts_at_each_end_of_the_range(databases, setting: Setting, end: str) -> None:
    value = setting.bounds[0 if end == "minimum" else 1]
    values = {**_base_values(setting.service), **_companions(setting, value), setting.key: value}
    started = time.monotonic()
    contract = service_contract(render(values), setting.service, _secrets(setting.service))
    # What the service's own parser makes of the rendered environment is what the chart was given ...
    assert getattr(setting.block.from_env(contract.env), setting.declared.name) == value
    expected = Settings.from_env(contract.env)
    applied = _run(contract, databases, expected.workers)
    # ... and the running service applied it: the pool of the worker that answered, the workers forked.
    assert applied == {"pool": expected.pool_size, "workers": expected.workers}, applied
    print(f"{setting.key}={value}: ready in {time.monotonic() - started:.2f}s (render, migrate, start, stop)")


@pytest.mark.parametrize("end", ["minimum", "maximum"])
@pytest.mark.parametrize("setting", SETTINGS, ids=[s.id for s in SETTINGS])
def test_one_step_past_each_end_is_refused_by_the_schema(setting: Setting, end: str) -> None:
    if end == "maximum" and setting.declared.maximum is None:
        pytest.skip("no maximum: the chart has none either (the start test proves a huge value works)")
    low, high = setting.bounds
    value = low - setting.step if end == "minimum" else high + setting.step
    value = round(value, 6) if setting.declared.kind == "number" else int(value)
    error = render_error({**_companions(setting, low), setting.key: value})
    assert "values don't meet the specifications of the schema" in error, error
    assert f"{setting.key}: Must be {'greater' if end == 'minimum' else 'less'} than or equal to" in error, error
