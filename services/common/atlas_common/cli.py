"""The command line every service shares: ``python -m <service> migrate`` and ``python -m <service> serve``,
and the commands a service adds: its package lists them in ``COMMANDS`` (auth: ``create-client``,
``generate-key``), as it lists its settings blocks in ``SETTINGS``."""

from __future__ import annotations

import argparse
import getpass
import importlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg2
import psycopg2.extensions

from . import migrations
from .config import ConfigError, Settings

# Pause between connection attempts: short, so migrate starts within seconds of the database.
RETRY_INTERVAL = 2.0

# libpq's words for failures that waiting cannot cure: retrying a wrong password or a missing database
# only hides the mistake behind a slow exit.
PERMANENT_FAILURES = (
    "authentication failed",  # wrong password (also "password authentication failed for user ...")
    "no password supplied",
    "does not exist",  # database "x" does not exist
    "for connection option",  # a malformed PG* value, e.g. PGPORT=abc
)


class DatabaseNotReached(Exception):
    """No connection: the message says why, in one line."""


@dataclass(frozen=True)
class Command:
    """A service's own subcommand: ``arguments`` adds its options to its parser, ``run`` gets the parsed
    arguments and returns the exit status (0 done, 1 failed, 2 refused: a usage or configuration error)."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: Callable[[argparse.ArgumentParser], None] = lambda parser: None


SHARED = ("migrate", "serve")


def main(package: str, argv: list[str] | None = None) -> int:
    own: tuple[Command, ...] = tuple(getattr(importlib.import_module(package), "COMMANDS", ()))
    clash = [c.name for c in own if c.name in SHARED]
    if clash:
        raise TypeError(f"{package}: COMMANDS may not redefine {clash}")
    parser = argparse.ArgumentParser(prog=f"python -m {package}", description=f"{package} service commands")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the pending SQL migrations to the database the PG* variables name")
    commands.add_parser("serve", help="serve the API on ATLAS_BIND until SIGTERM (granian, settings from ATLAS_*)")
    for command in own:
        command.arguments(commands.add_parser(command.name, help=command.help, description=command.help))
    args = parser.parse_args(argv)
    if args.command == "serve":
        from .server import serve  # only here: migrate needs no HTTP server

        return serve(f"{package}.wsgi:app")
    for command in own:
        if args.command == command.name:
            return command.run(args)

    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        conn = connect_waiting(package, settings)
    except DatabaseNotReached as exc:
        print(f"{package} migrate: cannot connect to the database: {exc}", file=sys.stderr)
        return 1
    try:
        applied = migrations.apply(conn, package)
    except (migrations.MigrationError, psycopg2.Error) as exc:
        print(f"{package} migrate: failed: {one_line(exc)}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    for migration in applied:
        print(f"{package} migrate: applied {migration}")
    if not applied:
        print(f"{package} migrate: schema is up to date")
    return 0


def connect_waiting(package: str, settings: Settings) -> psycopg2.extensions.connection:
    """Connect, retrying for up to ``settings.db_wait_seconds``: in Kubernetes the database may still
    be starting (a first image pull takes minutes), and an init container that exits at once is
    restarted with a back-off growing towards 5 minutes, which can outlast helm's timeout."""
    started = time.monotonic()
    deadline = started + settings.db_wait_seconds
    attempt = 0
    while True:
        attempt += 1
        try:
            # Database from the libpq environment; no statement timeout: a migration may take its time.
            return psycopg2.connect(connect_timeout=settings.connect_timeout, application_name=f"{package}-migrate")
        except psycopg2.OperationalError as exc:
            reason = one_line(exc)
            if any(words in reason for words in PERMANENT_FAILURES):
                raise DatabaseNotReached(reason) from None
            elapsed = time.monotonic() - started
            print(f"{package} migrate: attempt {attempt} failed ({elapsed:.1f}s elapsed): {reason}", file=sys.stderr)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DatabaseNotReached(
                    f"tried {libpq_target()}; gave up after waiting {elapsed:.1f}s, {attempt} attempt(s) "
                    f"(ATLAS_DB_WAIT_SECONDS={settings.db_wait_seconds})"
                ) from None
            time.sleep(min(RETRY_INTERVAL, remaining))  # never sleeps past the bound


def libpq_target() -> str:
    """Where libpq was told to connect, with its defaults filled in for what the environment leaves unset."""
    host = os.environ.get("PGHOST") or os.environ.get("PGHOSTADDR") or "the local Unix socket"
    port = os.environ.get("PGPORT") or "5432"
    database = os.environ.get("PGDATABASE") or os.environ.get("PGUSER") or _os_user()
    return f"host {host} port {port} database {database}"


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a passwd entry, as in the image (uid 10001)
        return "the OS user's name"


def one_line(exc: BaseException) -> str:
    """libpq's messages span lines ("...failed: Connection refused\\n\\tIs the server running..."): one line."""
    return " ".join(str(exc).split())
