"""The command line every service shares: ``python -m <service> migrate``."""

from __future__ import annotations

import argparse
import sys

import psycopg2

from . import migrations
from .config import ConfigError, Settings


def main(package: str, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {package}", description=f"{package} service commands")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply the pending SQL migrations to the database the PG* variables name")
    parser.parse_args(argv)

    try:
        settings = Settings.from_env()
        # Database from the libpq environment; no statement timeout: a migration may take its time.
        conn = psycopg2.connect(connect_timeout=settings.connect_timeout, application_name=f"{package}-migrate")
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    except psycopg2.OperationalError as exc:
        print(f"{package} migrate: cannot connect to the database: {str(exc).strip()}", file=sys.stderr)
        return 1
    try:
        applied = migrations.apply(conn, package)
    except (migrations.MigrationError, psycopg2.Error) as exc:
        print(f"{package} migrate: failed: {str(exc).strip()}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    for migration in applied:
        print(f"{package} migrate: applied {migration}")
    if not applied:
        print(f"{package} migrate: schema is up to date")
    return 0
