"""roles/db_password's atlas_scram_sha256 filter: the verifier ALTER ROLE is given instead of the password.

Checked against RFC 7677's SCRAM-SHA-256 example exchange (section 3: user "user", password "pencil", salt
W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations): the verifier's ServerKey must produce the server signature of that
exchange, and its StoredKey must be the hash of the ClientKey the client's proof reveals. That PostgreSQL accepts
the verifier for a real login is test_db_operations.py's rotation test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import os

import pytest

from tests.provisioning.ansible_run import REPO_ROOT

_spec = importlib.util.spec_from_file_location(
    "atlas_scram", os.path.join(REPO_ROOT, "roles", "db_password", "filter_plugins", "scram.py")
)
assert _spec is not None and _spec.loader is not None
scram = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(scram)

# RFC 7677 section 3.
SALT = "W22ZaJ0SNY7soEsUEjb6gQ=="
NONCE = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
AUTH_MESSAGE = f"n=user,r=rOprNGfwEbeRWgbNEkqO,r={NONCE},s={SALT},i=4096,c=biws,r={NONCE}".encode()
CLIENT_PROOF = "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="  # pragma: allowlist secret - RFC 7677
SERVER_SIGNATURE = "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="  # pragma: allowlist secret - RFC 7677


def _parts(verifier: str) -> tuple[str, int, bytes, bytes, bytes]:
    mechanism, rest = verifier.split("$", 1)
    iterations_salt, keys = rest.split("$")
    iterations, salt = iterations_salt.split(":")
    stored, server = keys.split(":")
    return mechanism, int(iterations), base64.b64decode(salt), base64.b64decode(stored), base64.b64decode(server)


def test_the_verifier_matches_rfc_7677s_example_exchange():
    mechanism, iterations, salt, stored_key, server_key = _parts(scram.atlas_scram_sha256("pencil", salt=SALT))

    assert (mechanism, iterations, base64.b64encode(salt).decode()) == ("SCRAM-SHA-256", 4096, SALT)
    assert base64.b64encode(hmac.new(server_key, AUTH_MESSAGE, hashlib.sha256).digest()).decode() == SERVER_SIGNATURE
    client_signature = hmac.new(stored_key, AUTH_MESSAGE, hashlib.sha256).digest()
    client_key = bytes(a ^ b for a, b in zip(base64.b64decode(CLIENT_PROOF), client_signature, strict=True))
    assert hashlib.sha256(client_key).digest() == stored_key


def test_each_verifier_has_a_fresh_16_byte_salt_and_never_contains_the_password():
    password = "Zq3" * 10 + "xy"  # pragma: allowlist secret - made up here
    first, second = scram.atlas_scram_sha256(password), scram.atlas_scram_sha256(password)

    assert first != second and len(_parts(first)[2]) == 16
    assert password not in first and "'" not in first and '"' not in first


@pytest.mark.parametrize("bad", ["", "pässword", None])
def test_empty_or_non_ascii_passwords_are_refused(bad):
    with pytest.raises(ValueError):
        scram.atlas_scram_sha256(bad)
