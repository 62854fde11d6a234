"""Whether the database holds the schema this image ships, and restoring it when it does not.

Why the web process restores it: a database that comes back empty (the ephemeral profile's emptyDir
after a database pod restart) would otherwise leave the pods Ready and answering 500 until someone
restarts them, because the migrations ran only in the init container. Restoring is
``migrations.apply()``: the same idempotent code, under the same advisory lock, as ``migrate``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import psycopg2
import psycopg2.errors
import psycopg2.extensions

from . import migrations
from .config import Settings

log = logging.getLogger("atlas.schema")

# What a statement raises when the schema it was written for is not there (or not yet there).
SCHEMA_ERRORS = (psycopg2.errors.UndefinedTable, psycopg2.errors.UndefinedColumn)

# After a restore that failed (or found nothing to do), this worker waits before the next one:
# probes and requests keep coming, and each restore opens a connection and takes the advisory lock.
HEAL_BACKOFF_SECONDS = 5.0
# The restore runs inside a request: bounded, unlike `migrate`, so a stuck lock cannot pin the thread.
HEAL_STATEMENT_TIMEOUT_MS = 60_000


def reason(exc: BaseException) -> str:
    """The server's one-line message ('relation "users" does not exist'), without the statement text
    that psycopg2 appends (LINE 1: INSERT ... VALUES ('ann@example.org', ...)): no request data in logs."""
    diag = getattr(exc, "diag", None)
    primary = diag.message_primary if diag is not None else None
    return primary or " ".join(str(exc).split())


@dataclass(frozen=True)
class SchemaStatus:
    missing: tuple[str, ...]  # shipped migrations the database has not applied, e.g. ("0001_create_users",)
    applied_none: bool  # none of the shipped ones is applied: the schema is missing, not merely behind

    @property
    def current(self) -> bool:
        # Versions beyond the shipped ones (a newer image has migrated, as in a rolling upgrade) are fine.
        return not self.missing

    @property
    def state(self) -> str:
        return "current" if self.current else "missing" if self.applied_none else "behind"


class Schema:
    """One per app (so one per gunicorn worker after the fork): the shipped versions and the restore."""

    def __init__(self, package: str, settings: Settings) -> None:
        self.package = package
        self.shipped = {m.version: str(m) for m in migrations.discover(package)}
        self._connect_timeout = settings.connect_timeout
        self._healing = threading.Lock()
        self._not_before = 0.0  # time.monotonic() before which no restore starts

    def status(self, conn: psycopg2.extensions.connection) -> SchemaStatus:
        """One round trip: the applied versions (the pool's connections autocommit, so a failed
        statement leaves the connection usable)."""
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT version FROM schema_migrations")
                applied = {version for (version,) in cur.fetchall()}
        except psycopg2.errors.UndefinedTable:
            applied = set()
        missing = tuple(name for version, name in sorted(self.shipped.items()) if version not in applied)
        return SchemaStatus(missing=missing, applied_none=len(missing) == len(self.shipped))

    def heal(self) -> bool:
        """Apply the shipped migrations; True when this call brought the schema up to date.

        Does nothing (False) while another thread of this worker restores, or within the back-off
        after a failed or idle restore: a caller never waits for another's restore, it answers 503.
        Never raises: the caller's response does not depend on it.
        """
        if not self._healing.acquire(blocking=False):
            return False
        try:
            if time.monotonic() < self._not_before:
                return False
            try:
                applied = self._apply()
            except (migrations.MigrationError, psycopg2.Error) as exc:
                self._not_before = time.monotonic() + HEAL_BACKOFF_SECONDS
                log.warning(
                    "schema restore failed: %s; next try in %gs at the earliest", reason(exc), HEAL_BACKOFF_SECONDS
                )
                return False
            if applied:
                log.info("schema restored: applied %s", ", ".join(map(str, applied)))
            else:
                # Another worker or pod was first, or the cause is not a missing migration.
                self._not_before = time.monotonic() + HEAL_BACKOFF_SECONDS
                log.info("schema restore: nothing left to apply")
            return True
        finally:
            self._healing.release()

    def _apply(self) -> list[migrations.Migration]:
        # Its own connection, not a pooled one: apply() changes the session (transactions, a
        # session-level advisory lock) and must not be cut short by the API's statement timeout.
        conn = psycopg2.connect(
            connect_timeout=self._connect_timeout,
            application_name=f"{self.package}-restore",
            options=f"-c statement_timeout={HEAL_STATEMENT_TIMEOUT_MS}",
        )
        try:
            return migrations.apply(conn, self.package)
        finally:
            conn.close()
