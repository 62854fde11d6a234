"""Run an Atlas service the way production does (``python -m <service> serve``: granian) on a loopback port.

Used by the service tests, the benchmarks, the fault drills and the chart contract test:

    with ServiceProcess("users", env=database_env, workers=2) as users:
        requests.get(users.url("/readyz"))
        users.worker_pids(); users.rss_kb(pid); users.pause(); users.resume(); users.logs()
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import requests

from .net import free_port
from .postgres import wait_until

# Settings that must come from the caller only, never leak in from the developer's shell.
_OWN_PREFIXES = ("PG", "ATLAS_", "GUNICORN_", "GRANIAN_", "USERS_SERVICE_", "PROMETHEUS_MULTIPROC_DIR")

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# How each server is started on the same settings (ATLAS_*): granian is what the image runs; gunicorn gthread
# is what `make bench` compares it with (evidence/gunicorn_conf.py). {app}: a WSGI target, module:attribute.
SERVERS = {
    "granian": [sys.executable, "-m", "atlas_common.server", "{app}"],
    "gunicorn": [sys.executable, "-m", "gunicorn", "--config", "python:evidence.gunicorn_conf", "{app}"],
}


@dataclass
class ServiceProcess:
    service: str  # "users", "projects" or "auth"
    env: dict[str, str] = field(default_factory=dict)  # PG* and any ATLAS_*/USERS_SERVICE_* settings (auth: key file)
    workers: int = 1
    threads: int = 2
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    server: str | None = None  # None: the service's own command, `python -m <service> serve`; else a SERVERS key
    app: str | None = None  # the WSGI target for `server` (default <service>.wsgi:app)

    def __post_init__(self) -> None:
        self.workdir = tempfile.mkdtemp(prefix=f"atlas-{self.service}-")
        self.log_path = os.path.join(self.workdir, "server.log")
        self.proc: subprocess.Popen | None = None
        self.started_at = 0.0

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self, wait_path: str | None = "/livez", timeout: float = 15.0) -> ServiceProcess:
        """Start the server; unless wait_path is None, wait until that path answers 200."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
        env.update(
            ATLAS_BIND=f"{self.host}:{self.port}",
            ATLAS_WORKERS=str(self.workers),
            ATLAS_THREADS=str(self.threads),
            ATLAS_GRACEFUL_TIMEOUT="5",
            PROMETHEUS_MULTIPROC_DIR=os.path.join(self.workdir, "metrics"),
        )
        env.update(self.env)
        if self.server is None:
            cmd = [sys.executable, "-m", self.service, "serve"]
        else:
            app = self.app or f"{self.service}.wsgi:app"
            cmd = [part.format(app=app) for part in SERVERS[self.server]]
            # evidence.gunicorn_conf and the bench's own apps live in the checkout, not in the venv.
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [_REPO, env.get("PYTHONPATH")]))
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - open for the process's lifetime
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir)
        if wait_path is not None:
            self.wait_for(wait_path, timeout=timeout)
        return self

    def wait_for(self, path: str, status: int = 200, timeout: float = 15.0) -> float:
        """Wait until ``path`` answers ``status``; return seconds since start(). Fails fast if the server died."""

        def answered() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.service} exited with {self.proc.returncode}:\n{self.logs()}")
            try:
                return requests.get(self.url(path), timeout=1).status_code == status
            except requests.ConnectionError:
                return False

        wait_until(answered, timeout=timeout, interval=0.02)
        return time.monotonic() - self.started_at

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (graceful shutdown), SIGKILL after ``timeout``; return the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.resume()  # a paused process cannot handle SIGTERM
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def pause(self) -> None:
        """SIGSTOP master and workers: the port still accepts connections, nothing answers (a hung service)."""
        for pid in [self.pid, *self.worker_pids()]:
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in [self.pid, *self.worker_pids()]:
            os.kill(pid, signal.SIGCONT)

    def __enter__(self) -> ServiceProcess:
        return self if self.proc is not None else self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- inspection ------------------------------------------------------------------------------
    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def worker_pids(self) -> list[int]:
        try:
            with open(f"/proc/{self.pid}/task/{self.pid}/children") as f:
                return sorted(int(pid) for pid in f.read().split())
        except FileNotFoundError:
            return []

    @staticmethod
    def rss_kb(pid: int) -> int:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for pid {pid}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the main process and its live workers have used so far: unlike wall
        time, it does not grow when other processes crowd the machine."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in [self.pid, *self.worker_pids()]:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
        return total / ticks

    def logs(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()
