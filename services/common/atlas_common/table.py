"""Row access for one table with an ``id`` identity key, ``created_at`` and ``updated_at``.

Every service's resources have that shape, so the SQL lives here once. Identifiers are composed
with psycopg2.sql (quoted), values are always parameters. Every method is one statement: the pool's
connections autocommit, and a single statement is atomic on its own. A row is found by its id, or by
another unique column (``column=``, e.g. auth's client_id). ``write_only`` columns (auth's secret hash)
are written by ``create`` and never read back by these methods.
"""

from __future__ import annotations

from typing import Any

from psycopg2 import sql
from psycopg2.extras import RealDictCursor


class Table:
    def __init__(self, name: str, fields: tuple[str, ...], write_only: tuple[str, ...] = ()) -> None:
        self.name = sql.Identifier(name)
        self.fields = fields
        self.write_only = write_only
        self.columns = sql.SQL(", ").join(map(sql.Identifier, ("id", *fields, "created_at", "updated_at")))

    def _check(self, values: dict[str, Any]) -> None:
        unknown = set(values) - set(self.fields) - set(self.write_only)
        if unknown:  # a programming error: values come from validated models
            raise ValueError(f"not columns of {self.name.string}: {sorted(unknown)}")

    def create(self, conn, values: dict[str, Any]) -> dict[str, Any]:
        self._check(values)
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING {}").format(
            self.name,
            sql.SQL(", ").join(map(sql.Identifier, values)),
            sql.SQL(", ").join(map(sql.Placeholder, values)),
            self.columns,
        )
        with conn.cursor(cursor_factory=RealDictCursor) as cur:
            cur.execute(query, values)
            return cur.fetchone()

    def get(self, conn, row_id: Any, column: str = "id") -> dict[str, Any] | None:
        query = sql.SQL("SELECT {} FROM {} WHERE {} = %s").format(self.columns, self.name, sql.Identifier(column))
        with conn.cursor(cursor_factory=RealDictCursor) as cur:
            cur.execute(query, (row_id,))
            return cur.fetchone()

    def page(self, conn, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Rows ordered by id, and the total row count."""
        # The total rides along every row (one round trip); a page past the end has no row to carry it.
        query = sql.SQL("SELECT {}, count(*) OVER () AS _total FROM {} ORDER BY id LIMIT %s OFFSET %s").format(
            self.columns, self.name
        )
        with conn.cursor(cursor_factory=RealDictCursor) as cur:
            cur.execute(query, (limit, offset))
            rows = cur.fetchall()
            if rows:
                total = rows[0]["_total"]
            else:
                cur.execute(sql.SQL("SELECT count(*) AS _total FROM {}").format(self.name))
                total = cur.fetchone()["_total"]
        for row in rows:
            del row["_total"]
        return rows, total

    def update(self, conn, row_id: Any, values: dict[str, Any], column: str = "id") -> dict[str, Any] | None:
        self._check(values)
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in values
        )
        query = sql.SQL("UPDATE {} SET {}, updated_at = now() WHERE {} = %(_id)s RETURNING {}").format(
            self.name, assignments, sql.Identifier(column), self.columns
        )
        with conn.cursor(cursor_factory=RealDictCursor) as cur:
            cur.execute(query, {**values, "_id": row_id})
            return cur.fetchone()

    def delete(self, conn, row_id: int) -> bool:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("DELETE FROM {} WHERE id = %s").format(self.name), (row_id,))
            return cur.rowcount == 1
