"""The system under test, on loopback: one throwaway PostgreSQL, each service's database migrated
once (as the release's init container does), and the services as the image runs them (`python -m
<service> serve`: granian) with the production settings of docs/interfaces.md (2 workers x 4 threads,
pool = threads); or, for comparisons, under another server (tests/support/processes.py SERVERS)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass

import requests

from tests.support.postgres import PostgresServer, wait_until
from tests.support.processes import ServiceProcess

ISSUER = "http://atlas.local"  # the tokens' iss; the keys are fetched from the auth process itself


@dataclass(frozen=True)
class Issuer:
    service: ServiceProcess  # the running auth service
    token: str  # an access token for the scopes asked
    required: dict[str, str]  # the settings that make a service require tokens from it

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


# The production defaults, spelled out so the tables can name the settings they measured.
WORKERS = 2
THREADS = 4
START_TIMEOUT = 30.0


class Stack(contextlib.AbstractContextManager):
    """``with Stack() as stack:``; every process it started is stopped on exit, whatever happened."""

    def __init__(self) -> None:
        self.pg = PostgresServer()
        self.db_env: dict[str, dict[str, str]] = {}
        self._running: list[ServiceProcess] = []

    def __enter__(self) -> Stack:
        self.pg.init()
        self.pg.start()
        return self

    def __exit__(self, *exc) -> None:
        for svc in reversed(self._running):
            svc.__exit__(None, None, None)
        self.pg.destroy()

    def database(self, service: str) -> dict[str, str]:
        """The service's own database, created and migrated on first use; returns its libpq env."""
        if service not in self.db_env:
            env = self.pg.create_database(service)
            run = subprocess.run(
                [sys.executable, "-m", service, "migrate"],
                # only the database's variables: none of the caller's PG* or ATLAS_* settings leak in
                env={"PATH": os.environ.get("PATH", ""), **env}, capture_output=True, text=True, timeout=60,
                check=False,
            )  # fmt: skip
            if run.returncode != 0:
                raise RuntimeError(f"{service} migrate failed: {run.stderr or run.stdout}")
            self.db_env[service] = env
        return self.db_env[service]

    def service(
        self,
        service: str,
        env: dict[str, str] | None = None,
        *,
        wait: bool = True,
        server: str | None = None,
        app: str | None = None,
    ) -> ServiceProcess:
        """Start ``service`` with the production settings (``env`` adds or overrides); with ``wait``,
        return once /readyz answers 200 (/livez for another ``app``, which may have no database).
        ``server``/``app``: another server or WSGI app with the same settings (ServiceProcess)."""
        proc = ServiceProcess(
            service,
            env={**self.database(service), **(env or {})},
            workers=WORKERS,
            threads=THREADS,
            server=server,
            app=app,
        )
        self._running.append(proc)
        proc.start(wait_path=("/readyz" if app is None else "/livez") if wait else None, timeout=START_TIMEOUT)
        if wait:
            # /readyz is answered by whichever worker booted first; the drills compare worker pids, so
            # wait for all of them.
            wait_until(lambda: len(proc.worker_pids()) == WORKERS, timeout=START_TIMEOUT)
        return proc

    def auth(self, scopes: str, lifetime: int = 3600) -> Issuer:
        """The auth service as deployed (a fresh ES256 key, its database migrated), a client holding ``scopes``
        (made by `python -m auth create-client`) and a token for them from POST /oauth/token; and the
        settings that make another service require tokens from it (``Issuer.required``)."""
        key = os.path.join(self.pg.workdir, "auth-signing-key.pem")
        if not os.path.exists(key):
            self._python("-m", "auth", "generate-key", key)
        auth = self.service(
            "auth",
            {
                "ATLAS_AUTH_SIGNING_KEY_FILE": key,
                "ATLAS_AUTH_ISSUER": ISSUER,
                "ATLAS_AUTH_TOKEN_LIFETIME": str(lifetime),
            },
        )
        client = json.loads(
            self._python(
                "-m", "auth", "create-client", "--name", "evidence", "--scopes", scopes, env=self.database("auth")
            )
        )
        answer = requests.post(
            auth.url("/oauth/token"), data={"grant_type": "client_credentials", "scope": scopes},
            auth=(client["client_id"], client["client_secret"]), timeout=10,
        )  # fmt: skip
        if answer.status_code != 200:
            raise RuntimeError(f"no token from the auth service: {answer.status_code} {answer.text[:300]}")
        required = {"ATLAS_AUTH_ISSUER": ISSUER, "ATLAS_AUTH_JWKS_URL": auth.url("/.well-known/jwks.json")}
        return Issuer(auth, answer.json()["access_token"], required)

    @staticmethod
    def _python(*args: str, env: dict[str, str] | None = None) -> str:
        """``python <args>`` with only PATH and ``env`` (no developer settings leak in); its stdout."""
        done = subprocess.run(
            [sys.executable, *args], env={"PATH": os.environ.get("PATH", ""), **(env or {})},
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"python {' '.join(args[:3])} failed: {done.stderr.strip()[-500:]}")
        return done.stdout

    def stop(self, proc: ServiceProcess) -> None:
        proc.__exit__(None, None, None)
        self._running.remove(proc)
