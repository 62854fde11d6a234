"""`python -m <service> migrate` waits for a database that is not up yet, within ATLAS_DB_WAIT_SECONDS,
and fails at once on what waiting cannot cure (a wrong password, a missing database)."""

from __future__ import annotations

import threading
import time

import pytest

from tests.services.test_migrations import migrate
from tests.support.net import free_port
from tests.support.postgres import PostgresServer


def timed_migrate(db_env: dict[str, str], **settings: str):
    start = time.monotonic()
    result = migrate("users", {**db_env, **settings})
    return result, time.monotonic() - start


def test_waits_for_a_database_that_comes_up_late():
    server = PostgresServer(port=free_port())
    server.init()  # initdb now, so that only the start itself is late
    starter = threading.Timer(3.0, server.start)
    try:
        starter.start()
        # The superuser and its database exist as soon as the server listens: nothing else to wait for.
        result, seconds = timed_migrate(server.libpq_env(), ATLAS_DB_WAIT_SECONDS="60")
        starter.join()
    finally:
        starter.cancel()
        server.destroy()
    assert result.returncode == 0, result.stderr
    assert "applied 0001_create_users" in result.stdout
    retries = [line for line in result.stderr.splitlines() if " attempt " in line]
    assert retries, result.stderr
    assert retries[0].startswith("users migrate: attempt 1 failed (0.")
    assert "Connection refused" in retries[0]
    assert seconds >= 2.5  # it really waited for the server, it did not find one at once


def test_gives_up_when_the_time_is_up():
    port = free_port()  # nothing listens here
    env = {"PGHOST": "127.0.0.1", "PGPORT": str(port), "PGDATABASE": "atlas_users", "PGUSER": "u", "PGPASSWORD": "p"}
    result, seconds = timed_migrate(env, ATLAS_DB_WAIT_SECONDS="3")
    assert result.returncode == 1
    assert 3 <= seconds < 30
    lines = result.stderr.strip().splitlines()
    assert len([line for line in lines if " attempt " in line]) >= 2  # retried, 2 s apart
    assert lines[-1].startswith("users migrate: cannot connect to the database: ")
    assert f"host 127.0.0.1 port {port} database atlas_users" in lines[-1]
    assert "gave up after waiting 3." in lines[-1]
    assert "Traceback" not in result.stderr


def test_zero_means_one_attempt():
    env = {"PGHOST": "127.0.0.1", "PGPORT": str(free_port()), "PGUSER": "someone", "PGPASSWORD": "p"}
    result, _ = timed_migrate(env, ATLAS_DB_WAIT_SECONDS="0")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len([line for line in lines if " attempt " in line]) == 1
    assert "database someone" in lines[-1]  # libpq's default database: the user's name


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"PGPASSWORD": "wrong"}, "password authentication failed"),  # pragma: allowlist secret
        ({"PGPASSWORD": ""}, "no password supplied"),
        ({"PGDATABASE": "no_such_database"}, 'database "no_such_database" does not exist'),
    ],
    ids=["wrong-password", "no-password", "no-database"],
)
def test_what_waiting_cannot_cure_fails_at_once(database, change, says):
    result, seconds = timed_migrate({**database, **change}, ATLAS_DB_WAIT_SECONDS="60")
    assert result.returncode == 1
    assert says in result.stderr
    assert " attempt " not in result.stderr  # one attempt, no retry
    assert seconds < 30  # far inside the 60 s it would have waited for an unreachable server
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["abc", "5000", "-1"])
def test_bad_wait_setting_is_named(value):
    result, _ = timed_migrate({}, ATLAS_DB_WAIT_SECONDS=value)  # refused before any connection attempt
    assert result.returncode == 2
    assert f"ATLAS_DB_WAIT_SECONDS must be an integer between 0 and 3600, got '{value}'" in result.stderr
