"""A throwaway PostgreSQL server for tests, benchmarks and fault drills.

The server is Debian's PostgreSQL (``/usr/lib/postgresql/<major>/bin``), initialised in a temporary
directory, listening on 127.0.0.1 on a free port, with password (scram) authentication so that the
services log in exactly as they do in Kubernetes. PostgreSQL refuses to run as root, so under root
every server command runs as the ``postgres`` user.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg2

from .net import free_port

SUPERUSER = "postgres"


def _bindir() -> str:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: run scripts/install-tools.sh postgresql")
    return os.path.dirname(candidates[-1])


@dataclass
class PostgresServer:
    """One PostgreSQL server process. ``start()``/``stop()`` may be called repeatedly (outage tests)."""

    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="atlas-pg-"))

    def __post_init__(self) -> None:
        self.bindir = _bindir()
        self.datadir = os.path.join(self.workdir, "data")
        self.logfile = os.path.join(self.workdir, "server.log")
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.workdir, user="postgres", group="postgres")  # root reads it regardless

    # -- process control -------------------------------------------------------------------------
    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self._as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def init(self) -> PostgresServer:
        pwfile = os.path.join(self.workdir, "pwfile")
        with open(pwfile, "w") as f:
            f.write(self.password)
        if self._as_root:
            shutil.chown(pwfile, user="postgres", group="postgres")
        self._run(
            f"{self.bindir}/initdb",
            "-D",
            self.datadir,
            "-U",
            SUPERUSER,
            "--pwfile",
            pwfile,
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "-N",
        )
        os.unlink(pwfile)
        with open(os.path.join(self.datadir, "postgresql.auto.conf"), "a") as f:
            f.write(
                f"listen_addresses = '{self.host}'\nport = {self.port}\n"
                f"unix_socket_directories = '{self.workdir}'\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 300\n"
            )
        return self

    def start(self, timeout: float = 30) -> None:
        self._run(
            f"{self.bindir}/pg_ctl", "-D", self.datadir, "-l", self.logfile, "-w", "-t", str(int(timeout)), "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """Stop the server. ``fast`` closes client connections, as a real outage does."""
        self._run(f"{self.bindir}/pg_ctl", "-D", self.datadir, "-m", mode, "-w", "stop", check=False)

    def is_running(self) -> bool:
        return self._run(f"{self.bindir}/pg_ctl", "-D", self.datadir, "status", check=False).returncode == 0

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)

    @contextmanager
    def running(self) -> Iterator[PostgresServer]:
        """``with PostgresServer().running() as server:`` initialised, started, and destroyed at the end."""
        self.init()
        try:
            self.start()
            yield self
        finally:
            self.destroy()

    # -- clients ---------------------------------------------------------------------------------
    def libpq_env(
        self, database: str = "postgres", user: str = SUPERUSER, password: str | None = None
    ) -> dict[str, str]:
        """The standard libpq variables a service reads, pointing at this server."""
        return {
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGDATABASE": database,
            "PGUSER": user,
            "PGPASSWORD": self.password if password is None else password,
        }

    def connect(self, database: str = "postgres"):
        conn = psycopg2.connect(host=self.host, port=self.port, dbname=database, user=SUPERUSER, password=self.password)
        conn.autocommit = True
        return conn

    def create_database(self, name: str, owner_password: str | None = None) -> dict[str, str]:
        """Create a database owned by a new login role of the same name; return its libpq env."""
        owner_password = owner_password or secrets.token_urlsafe(12)
        conn = self.connect()  # not `with conn`: psycopg2 would wrap CREATE DATABASE in a transaction
        with conn.cursor() as cur:
            cur.execute(f'CREATE ROLE "{name}" LOGIN PASSWORD %s', (owner_password,))
            cur.execute(f'CREATE DATABASE "{name}" OWNER "{name}"')
        conn.close()
        return self.libpq_env(database=name, user=name, password=owner_password)

    def drop_database(self, name: str) -> None:
        conn = self.connect()
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'DROP ROLE IF EXISTS "{name}"')
        conn.close()


def wait_until(predicate, timeout: float, interval: float = 0.05) -> float:
    """Poll ``predicate`` until it is true; return the seconds it took, or raise TimeoutError."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise TimeoutError(f"condition not met within {timeout}s")
        time.sleep(interval)
