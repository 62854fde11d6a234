"""`python -m <service> migrate` against a real database: applies, is idempotent, refuses tampering."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCHEMA_QUERY = """
SELECT table_name, column_name, data_type, is_nullable, column_default
FROM information_schema.columns WHERE table_schema = 'public' ORDER BY table_name, column_name
"""


def migrate(service: str, db_env: dict[str, str]) -> subprocess.CompletedProcess:
    # Nothing from the developer's shell: libpq variables and settings come from the test only.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "ATLAS_"))} | db_env
    return subprocess.run(
        [sys.executable, "-m", service, "migrate"], env=env, capture_output=True, text=True, timeout=60
    )


def schema(postgres_server, db_env):
    conn = postgres_server.connect(db_env["PGDATABASE"])
    with conn.cursor() as cur:
        cur.execute(SCHEMA_QUERY)
        columns = cur.fetchall()
        cur.execute("SELECT version, name, checksum, applied_at FROM schema_migrations ORDER BY version")
        applied = cur.fetchall()
    conn.close()
    return columns, applied


@pytest.mark.parametrize(("service", "table"), [("users", "users"), ("projects", "projects"), ("auth", "clients")])
def test_migrate_twice_changes_nothing_the_second_time(service, table, database, postgres_server):
    first = migrate(service, database)
    assert first.returncode == 0, first.stderr
    assert f"applied 0001_create_{table}" in first.stdout
    after_first = schema(postgres_server, database)
    assert table in {row[0] for row in after_first[0]}

    second = migrate(service, database)
    assert second.returncode == 0, second.stderr
    assert "schema is up to date" in second.stdout
    assert schema(postgres_server, database) == after_first  # same tables, same applied_at


def test_concurrent_migrations_apply_once(database, postgres_server):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | database
    runs = [
        subprocess.Popen([sys.executable, "-m", "users", "migrate"], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    outputs = [run.communicate(timeout=60)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0]
    assert sum("applied 0001_create_users" in out for out in outputs) == 1
    assert len(schema(postgres_server, database)[1]) == 1


def test_a_changed_migration_is_refused(database, postgres_server):
    assert migrate("users", database).returncode == 0
    conn = postgres_server.connect(database["PGDATABASE"])
    with conn.cursor() as cur:
        cur.execute("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1")
    conn.close()
    result = migrate("users", database)
    assert result.returncode == 1
    assert "0001_create_users was changed after it was applied" in result.stderr


def test_unreachable_database_is_a_clear_error(database):
    result = migrate("users", {**database, "PGPASSWORD": "wrong"})
    assert result.returncode == 1
    assert "cannot connect to the database" in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_setting_is_named(database):
    result = migrate("users", {**database, "ATLAS_DB_CONNECT_TIMEOUT": "soon"})
    assert result.returncode == 2
    assert "ATLAS_DB_CONNECT_TIMEOUT must be an integer" in result.stderr
