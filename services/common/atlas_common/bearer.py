"""Bearer tokens (RFC 6750) on every API operation, when ATLAS_AUTH_ISSUER is set.

Each operation declares its scope through its ``routing.Api`` (GET: the API's read scope, else its write
scope); ``authorize(scope)`` runs before the operation validates its input. The token is an RFC 9068 JWT
access token of the auth service: signed with a key it publishes (keys.py: found by the header's ``kid``,
verified with that key's one algorithm), ``typ`` at+jwt, ``iss`` = ATLAS_AUTH_ISSUER, ``aud`` holding
ATLAS_AUTH_AUDIENCE, not expired (``exp``, ``iat`` and ``nbf`` with a leeway of ``LEEWAY`` seconds for
clocks that differ), with a ``sub``; its ``scope`` claim lists what it grants.

Answers (the usual error body, and the RFC 6750 §3 challenge):

- no token (no Authorization header, or another scheme): 401 ``missing_token``,
  ``WWW-Authenticate: Bearer realm="atlas"``;
- a token that is not valid: 401 ``invalid_token``, the challenge with ``error="invalid_token"`` and an
  ``error_description`` saying why (expired, another issuer or audience, bad signature, unknown key, ...);
- a valid token without the scope: 403 ``insufficient_scope``, the challenge with
  ``error="insufficient_scope"`` and ``scope="<the scope needed>"``;
- the signing keys cannot be fetched: 503 ``auth_unavailable`` (details name the dependency and URL).

With ATLAS_AUTH_ISSUER unset nothing is checked, and each API response says so: ``X-Authentication:
disabled`` (``required`` when tokens are checked).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import current_app, request
from joserfc import jws, jwt
from joserfc.errors import (
    BadSignatureError,
    ExpiredTokenError,
    InvalidClaimError,
    JoseError,
    MissingClaimError,
)
from joserfc.jwt import JWTClaimsRegistry

from .errors import ApiError
from .keys import KeysUnavailable, LocalKeys, RemoteJwks, algorithm

log = logging.getLogger("atlas.bearer")

HEADER = "X-Authentication"  # `required` or `disabled` on every API response
REALM = "atlas"
LEEWAY = 30  # seconds: clocks of the auth service's node and this one's may differ a little
MAX_TOKEN_LENGTH = 8192  # an Atlas token is under 1 KiB; anything far longer is not one
ACCESS_TOKEN_TYPES = {"at+jwt", "application/at+jwt"}  # RFC 9068 §2.1, §4


@dataclass(frozen=True)
class Principal:
    """Who called: the token's subject (the client id, for the client credentials grant) and its scopes."""

    subject: str
    scopes: frozenset[str]


def _quoted(text: str) -> str:
    # RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
    return "".join(c for c in text if 0x20 <= ord(c) <= 0x7E and c not in '"\\')


def challenge(error: str | None = None, description: str | None = None, scope: str | None = None) -> str:
    """The WWW-Authenticate value of a Bearer challenge."""
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{_quoted(description)}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(parts)


def invalid_token(why: str) -> ApiError:
    return ApiError(
        401,
        "invalid_token",
        f"the bearer token is not valid: {why}",
        headers={"WWW-Authenticate": challenge("invalid_token", why)},
    )


def insufficient_scope(scope: str, message: str, details: dict | None = None) -> ApiError:
    return ApiError(
        403,
        "insufficient_scope",
        message,
        details or {"required": scope},
        headers={"WWW-Authenticate": challenge("insufficient_scope", f"the token lacks the scope {scope}", scope)},
    )


class BearerCheck:
    """Verifies tokens with ``keys`` (RemoteJwks, or the auth service's LocalKeys) for one issuer and audience."""

    def __init__(self, issuer: str, audience: str, keys: LocalKeys | RemoteJwks) -> None:
        self.issuer, self.audience, self.keys = issuer, audience, keys

    def _claims_registry(self) -> JWTClaimsRegistry:
        return JWTClaimsRegistry(
            leeway=LEEWAY,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
        )

    def require(self, scope: str) -> Principal:
        """The caller of the request being served, if its token is valid and grants ``scope``; else ApiError."""
        principal = self.authenticate(request.headers.get("Authorization"))
        if scope not in principal.scopes:
            granted = " ".join(sorted(principal.scopes)) or "none"
            raise insufficient_scope(
                scope,
                f"this operation needs the scope {scope}; the token grants: {granted}",
                {"required": scope, "granted": sorted(principal.scopes)},
            )
        return principal

    def authenticate(self, authorization: str | None) -> Principal:
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer":
            said = f", not {scheme[:20]!r} credentials" if scheme else ""
            raise ApiError(
                401,
                "missing_token",
                f"this API needs a bearer token (Authorization: Bearer <token>){said}; "
                f"the auth service issues them at /oauth/token",
                headers={"WWW-Authenticate": challenge()},
            )
        return self.verify(token.strip())

    def verify(self, token: str) -> Principal:
        if not token or " " in token:
            raise invalid_token("malformed: one token expected after Bearer")
        if len(token) > MAX_TOKEN_LENGTH:
            raise invalid_token(f"longer than {MAX_TOKEN_LENGTH} characters")
        try:
            header = jws.extract_compact(token.encode("ascii")).headers()
        except (JoseError, ValueError, TypeError):  # UnicodeError is a ValueError
            raise invalid_token("not a signed JWT") from None
        if not isinstance(header, dict):  # joserfc only asks that "alg" be `in` it: a list or a string passes
            raise invalid_token("not a signed JWT")
        if str(header.get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
            raise invalid_token("not an access token (its typ is not at+jwt)")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise invalid_token("it names no signing key (kid)")
        try:
            key = self.keys.key(kid)
        except KeysUnavailable as exc:
            log.warning("cannot fetch the token signing keys: %s", exc)
            raise ApiError(
                503,
                "auth_unavailable",
                f"the auth service's signing keys cannot be fetched ({exc.reason}); retry later",
                {"dependency": "auth", "url": exc.url},
            ) from None
        if key is None:
            raise invalid_token("signed with a key the auth service does not publish")
        alg = algorithm(key)  # the key's one algorithm (keys.usable kept only keys that have one)
        if header.get("alg") != alg:
            raise invalid_token(f"its key signs with {alg}, the token says {str(header.get('alg'))[:10]}")
        try:
            claims = jwt.decode(token, key, algorithms=[alg]).claims
        except BadSignatureError:
            raise invalid_token("the signature does not verify") from None
        except (JoseError, ValueError, TypeError):
            raise invalid_token("malformed") from None
        self._validate(claims)
        scope = claims.get("scope", "")
        if not isinstance(scope, str):
            raise invalid_token("its scope claim is not a string")
        return Principal(claims["sub"], frozenset(scope.split()))

    def _validate(self, claims: dict) -> None:
        try:
            self._claims_registry().validate(claims)
        except ExpiredTokenError:
            raise invalid_token("it has expired") from None
        except MissingClaimError as exc:
            raise invalid_token(f"it lacks the claim {exc.claim}") from None
        except InvalidClaimError as exc:
            why = {
                "iss": f"it was not issued by {self.issuer}",
                "aud": f"it is not meant for the audience {self.audience}",
                "iat": "it was issued in the future",
                "nbf": "it is not valid yet",
            }.get(exc.claim, f"its claim {exc.claim} is invalid")
            raise invalid_token(why) from None
        except (JoseError, ValueError, TypeError, OverflowError):
            raise invalid_token("its claims are malformed") from None


def authorize(scope: str) -> None:
    """Run before each operation: with tokens checked, the caller must hold ``scope`` (else ApiError)."""
    check: BearerCheck | None = current_app.extensions["atlas"].bearer
    if check is not None:
        check.require(scope)
