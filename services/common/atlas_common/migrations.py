"""Versioned SQL migrations shipped inside a service package (``<package>/migrations/NNNN_name.sql``).

Applied in version order, each in one transaction together with its schema_migrations row, under an
advisory lock so that two init containers starting at once cannot apply the same file twice.
A file changed after it was applied is refused (its checksum no longer matches): migrations are
append-only history.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

import psycopg2.extensions

FILENAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    def __str__(self) -> str:
        return f"{self.version:04d}_{self.name}"


def discover(package: str) -> list[Migration]:
    """The migrations shipped in ``<package>.migrations``, in version order."""
    found: dict[int, Migration] = {}
    for entry in resources.files(package).joinpath("migrations").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = FILENAME.match(entry.name)
        if not match:
            raise MigrationError(f"{package}: migration file {entry.name!r} is not named NNNN_lower_snake.sql")
        migration = Migration(int(match["version"]), match["name"], entry.read_text(encoding="utf-8"))
        if migration.version in found:
            raise MigrationError(f"{package}: two migrations share version {migration.version:04d}")
        found[migration.version] = migration
    return [found[v] for v in sorted(found)]


def apply(conn: psycopg2.extensions.connection, package: str) -> list[Migration]:
    """Apply what is missing; return what was applied (empty when the schema is current)."""
    migrations = discover(package)
    conn.autocommit = False
    applied_now: list[Migration] = []
    with conn.cursor() as cur:
        # Session-level lock: held across the per-migration transactions below, released at the end.
        cur.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"atlas-migrations:{package}",))
        conn.commit()
        try:
            cur.execute(CREATE_TABLE)
            cur.execute("SELECT version, checksum FROM schema_migrations")
            done = dict(cur.fetchall())
            conn.commit()
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(f"{package}: migration {migration} was changed after it was applied")
                    continue
                cur.execute(migration.sql)
                cur.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
                conn.commit()
                applied_now.append(migration)
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.execute("SELECT pg_advisory_unlock(hashtext(%s))", (f"atlas-migrations:{package}",))
            conn.commit()
    return applied_now
