"""The token signing keys: ATLAS_AUTH_SIGNING_KEY_FILE, a PEM file holding one or more private keys.

The first key signs every token; every key is published at /.well-known/jwks.json, so that a rotation
never breaks a token in use (services/README.md, "Rotating the signing key"). A key is an EC key on P-256
(ES256) or an RSA key of at least 2048 bits (RS256); its ``kid`` is its RFC 7638 thumbprint, so the same
key has the same id wherever it is loaded. Anything else in the file (a public key, a certificate, an
encrypted key, two copies of a key) stops the service at start with one line naming the variable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from atlas_common.config import ConfigError
from atlas_common.keys import MIN_RSA_BITS, algorithm
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, Key, KeySet, RSAKey

from auth.config import TokenSettings

VARIABLE = "ATLAS_AUTH_SIGNING_KEY_FILE"
ALLOWED = next(d for d in TokenSettings.declared() if d.env == VARIABLE).allowed()
RSA_BITS = 3072  # what generate-key makes for RS256 (2048 is accepted when loaded)
_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.*?-----END \1-----", re.DOTALL)
_PRIVATE = {"PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY"}


class KeyFileError(ValueError):
    """What is wrong with the key file, in a few words."""


@dataclass(frozen=True)
class SigningKeys:
    keys: tuple[Key, ...]  # private, each with kid, alg and use; the first signs

    @property
    def signing(self) -> Key:
        return self.keys[0]

    def signing_set(self) -> KeySet:
        """The signing key alone, as Authlib's token generator takes it (a key set: its kid goes in the header)."""
        return KeySet([self.signing])

    def jwks(self) -> dict:
        """The public JWK set: what /.well-known/jwks.json serves."""
        return {"keys": [key.as_dict(private=False) for key in self.keys]}

    def public_set(self) -> KeySet:
        return KeySet.import_key_set(self.jwks())


def load(path: str | None) -> SigningKeys:
    """The keys of ``path``; ConfigError (one line naming ATLAS_AUTH_SIGNING_KEY_FILE) when there are none."""
    if path is None:
        raise ConfigError(f"{VARIABLE} must be {ALLOWED}, got nothing: the auth service cannot sign tokens")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("ascii")
        return SigningKeys(parse(text))
    except (OSError, UnicodeDecodeError, KeyFileError) as exc:
        problem = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        if isinstance(exc, UnicodeDecodeError):
            problem = "not a PEM file (not ASCII text)"
        raise ConfigError(f"{VARIABLE} must be {ALLOWED}, got {path!r}: {problem}") from None


def parse(text: str) -> tuple[Key, ...]:
    blocks = list(_BLOCK.finditer(text))
    if not blocks:
        raise KeyFileError("no PEM block in it")
    keys: list[Key] = []
    for number, block in enumerate(blocks, 1):
        kind = block.group(1)
        if kind not in _PRIVATE:
            raise KeyFileError(f"block {number} is a {kind}, not an unencrypted private key")
        key = _import(block.group(0).encode("ascii"), number)
        if any(k.kid == key.kid for k in keys):
            raise KeyFileError(f"block {number} repeats the key {key.kid}")
        keys.append(key)
    return tuple(keys)


def _import(pem: bytes, number: int) -> Key:
    try:
        private = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(f"block {number} is not a usable private key ({exc})") from None
    # Checked on cryptography's key, before joserfc sees it: it raises a bare KeyError on curves it lacks.
    if isinstance(private, ec.EllipticCurvePrivateKey) and isinstance(private.curve, ec.SECP256R1):
        key: Key = ECKey.import_key(pem)
    elif isinstance(private, rsa.RSAPrivateKey) and private.key_size >= MIN_RSA_BITS:
        key = RSAKey.import_key(pem)
    else:
        raise KeyFileError(
            f"block {number}: only EC keys on P-256 and RSA keys of {MIN_RSA_BITS} bits or more sign tokens"
        )
    alg = algorithm(key)
    kid = key.thumbprint()
    return type(key).import_key(pem, {"kid": kid, "alg": alg, "use": "sig"})


def generate(alg: str) -> bytes:
    """A new private key for ``alg`` (ES256 or RS256), as unencrypted PKCS#8 PEM."""
    if alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    else:
        raise ValueError(f"unknown algorithm {alg!r}")
    return private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def write_private(path: str, data: bytes, overwrite: bool) -> None:
    """Write ``data`` to a file only its owner may read (0600); FileExistsError unless ``overwrite``."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(fd, 0o600)  # an existing file overwritten keeps its mode otherwise
        f.write(data)
