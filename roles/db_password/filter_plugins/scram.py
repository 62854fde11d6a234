"""atlas_scram_sha256: the SCRAM-SHA-256 verifier PostgreSQL stores for a password, computed on the controller.

ALTER ROLE ... PASSWORD '<verifier>' sets a password without the password itself leaving the controller: the
exec request (whose command line the API server may log) and the server's own logs see only the verifier, which
does not let anyone log in. psql's \\password does the same. The format and the computation are PostgreSQL's
(src/common/scram-common.c scram_build_secret, RFC 5802 and RFC 7677):

    SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
    SaltedPassword = PBKDF2-HMAC-SHA-256(password, salt, iterations)
    StoredKey = SHA-256(HMAC(SaltedPassword, "Client Key")); ServerKey = HMAC(SaltedPassword, "Server Key")

with PostgreSQL's defaults: 4096 iterations (scram_iterations) and a 16-byte random salt. The password is used as
is: SASLprep leaves the generated passwords (ASCII letters and digits) unchanged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os


def atlas_scram_sha256(password: str, iterations: int = 4096, salt: bytes | str | None = None) -> str:
    """The verifier for ``password``; ``salt`` (bytes, or base64 text) only for reproducible tests."""
    if not isinstance(password, str) or not password:
        raise ValueError("atlas_scram_sha256 needs a non-empty password")
    if not password.isascii():
        raise ValueError("atlas_scram_sha256 takes ASCII passwords only (no SASLprep here)")
    if salt is None:
        salt = os.urandom(16)
    elif isinstance(salt, str):
        salt = base64.b64decode(salt)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, int(iterations))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(b: bytes) -> str:
        return base64.b64encode(b).decode()

    return f"SCRAM-SHA-256${int(iterations)}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


class FilterModule:
    def filters(self):
        return {"atlas_scram_sha256": atlas_scram_sha256}
