"""The OAuth clients, in the service's own database (table ``clients``): client id, name, scopes, and the
secret only as an argon2id hash.

The secret is random (256 bits) and shown once, by ``python -m auth create-client``. Checking it is
argon2's constant-time verification; an unknown or revoked client is checked against a stand-in hash with
the same parameters, so that it costs the same time and gets the same answer as a wrong secret
(invalid_client): the token endpoint does not tell which client ids exist.

argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, 1 lane), not argon2-cffi's default
(64 MiB, 3 passes, 4 lanes): every thread of a worker may be verifying at once, and four of those at
64 MiB would take a 256 MiB container past its memory limit. A random secret of 256 bits needs no slower
hash to resist guessing; the hash is there so that a copy of the table does not give the secrets away.
"""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from atlas_common.current import connection
from atlas_common.routing import KEY_PATTERN
from atlas_common.scopes import ordered
from atlas_common.table import Table
from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.errors import InvalidScopeError
from psycopg2 import sql
from psycopg2.extras import RealDictCursor

GRANT_TYPE = "client_credentials"
AUTH_METHODS = ("client_secret_basic", "client_secret_post")  # RFC 6749 §2.3.1: HTTP Basic, or form fields
HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

clients = Table("clients", ("client_id", "name", "scopes", "revoked_at"), write_only=("secret_hash",))


def revoke(conn, client_id: str) -> dict | None:
    """Revoke a client in one statement (two admins at once: the first revoked_at stays); its row, or None."""
    query = sql.SQL(
        "UPDATE clients SET revoked_at = coalesce(revoked_at, now()),"
        " updated_at = CASE WHEN revoked_at IS NULL THEN now() ELSE updated_at END"
        " WHERE client_id = %s RETURNING {}"
    ).format(clients.columns)
    with conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(query, (client_id,))
        return cur.fetchone()


def new_credentials() -> tuple[str, str]:
    """A new client id (24 characters) and secret (43 characters), both URL-safe."""
    return secrets.token_urlsafe(18), secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return HASHER.hash(secret)


@functools.cache
def _stand_in_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(32))


def _verify(secret_hash: str, secret: str) -> bool:
    try:
        return HASHER.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class Client(ClientMixin):
    """A client as Authlib's authorization server sees it."""

    client_id: str
    scopes: tuple[str, ...]
    secret_hash: str
    active: bool  # False: unknown or revoked: its secret never matches

    def get_client_id(self) -> str:
        return self.client_id

    def check_client_secret(self, client_secret: str) -> bool:
        matches = _verify(self.secret_hash, client_secret)  # always run: the same time, whoever asks
        return matches and self.active

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return endpoint == "token" and method in AUTH_METHODS

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == GRANT_TYPE

    def get_allowed_scope(self, scope: str | None) -> str:
        """No scope asked: every scope of the client (RFC 6749 §3.3, the default); else what was asked, if the
        client has all of it (the server checked the syntax and that Atlas knows each scope)."""
        if not scope:
            return " ".join(self.scopes)
        asked = scope.split()
        refused = [s for s in asked if s not in self.scopes]
        if refused:
            raise InvalidScopeError(f"this client may not request the scope(s): {' '.join(refused)}")
        return " ".join(ordered(asked))

    # The client credentials grant has no redirection and no response type.
    def get_default_redirect_uri(self) -> None:
        return None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return False

    def check_response_type(self, response_type: str) -> bool:
        return False


def find(client_id: str) -> Client:
    """The client ``client_id`` names; a stand-in that never authenticates when none is active."""
    if not re.fullmatch(KEY_PATTERN, client_id):  # no client has such an id (nor could a NUL reach the database)
        return Client(client_id, (), _stand_in_hash(), active=False)
    with connection() as conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(
            "SELECT client_id, secret_hash, scopes, revoked_at IS NULL AS active FROM clients WHERE client_id = %s",
            (client_id,),
        )
        row = cur.fetchone()
    if row is None:
        return Client(client_id, (), _stand_in_hash(), active=False)
    return Client(row["client_id"], tuple(row["scopes"]), row["secret_hash"], active=row["active"])
