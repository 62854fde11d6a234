"""The OAuth 2.0 token endpoint (client credentials grant, RFC 6749 §4.4) and the published keys.

The protocol is Authlib's: its Flask ``AuthorizationServer`` with its ``ClientCredentialsGrant`` and its
RFC 9068 ``JWTBearerTokenGenerator`` (JWT access tokens: iss, exp, iat, aud, sub, client_id, jti, scope;
header typ at+jwt, kid). What is Atlas' own:

- the clients (clients.py: argon2id hashes, unknown = wrong secret = revoked);
- the scopes: the known ones (atlas_common.scopes), a client's own, all of them when none is asked;
- the error answers, all RFC 6749 §5.2 JSON (``error``, ``error_description``), ``Cache-Control:
  no-store``: ``invalid_client`` is always 401 with ``WWW-Authenticate: Basic realm="atlas"`` and one
  description whatever failed; ``invalid_request`` also for what Authlib lets through (a body that is not
  form-encoded, parameters in the URL or given twice, a missing grant_type, two ways of authenticating);
- TLS: the service speaks plain HTTP behind the ingress like every Atlas service, so Authlib's https-only
  guard (``AUTHLIB_INSECURE_TRANSPORT``) is off in this process; the ingress terminates TLS.

``GET /.well-known/jwks.json``: every key of ATLAS_AUTH_SIGNING_KEY_FILE, public part only;
``GET /.well-known/oauth-authorization-server``: the RFC 8414 metadata (issuer, token endpoint, JWKS URL,
grant types, client authentication methods, scopes).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
from typing import ClassVar

from atlas_common.config import AuthSettings
from atlas_common.scopes import SCOPES, unknown
from authlib.integrations.flask_oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidClientError, InvalidRequestError, InvalidScopeError, OAuth2Error
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from flask import Blueprint, Flask, Response, current_app, jsonify, request

from auth import clients
from auth.config import TokenSettings
from auth.signing import SigningKeys

os.environ["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # TLS ends at the ingress (see the module's doc)

log = logging.getLogger("atlas.auth")

TOKEN_PATH = "/oauth/token"  # noqa: S105 - a path, not a password
JWKS_PATH = "/.well-known/jwks.json"
METADATA_PATH = "/.well-known/oauth-authorization-server"
REALM = "atlas"
FORM = "application/x-www-form-urlencoded"
CLIENT_FAILED = "client authentication failed: unknown client, wrong secret or revoked client"
# RFC 6749 Appendix A.4: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), separated by single spaces.
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")
_PARAMETER = re.compile(r"[a-z_]{1,40}")  # a parameter name safe to repeat in an error_description

oauth = Blueprint("oauth", __name__)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = list(clients.AUTH_METHODS)


class AccessTokens(JWTBearerTokenGenerator):
    """RFC 9068 JWTs signed with the first key of the key file, for the one audience of the release."""

    def __init__(self, auth: AuthSettings, tokens: TokenSettings, keys: SigningKeys) -> None:
        lifetime = tokens.lifetime
        super().__init__(auth.issuer, alg=keys.signing.alg, expires_generator=lambda client, grant_type: lifetime)
        self.audience, self.keys = auth.audience, keys

    def get_jwks(self):
        return self.keys.signing_set()  # one key in a set: Authlib then names it in the header (kid)

    def get_audiences(self, client, user, scope) -> str:
        return self.audience


class Server(AuthorizationServer):
    def validate_requested_scope(self, scope: str | None) -> None:
        if scope is None:
            return
        asked = scope.split(" ")
        if not all(_SCOPE_TOKEN.fullmatch(s) for s in asked):
            raise InvalidScopeError("scope must be scope names separated by single spaces")
        strangers = unknown(asked)
        if strangers:
            raise InvalidScopeError(f"unknown scope(s): {' '.join(strangers)}; known: {' '.join(SCOPES)}")

    def handle_error_response(self, request, error: OAuth2Error) -> Response:
        status, body, headers = error(self.get_error_uri(request, error))
        body.setdefault("error_description", error.get_error_description()[:300])
        if isinstance(error, InvalidClientError):
            # One answer whatever failed (RFC 6749 §5.2: 401 and the scheme the client may use).
            status, body["error_description"] = 401, CLIENT_FAILED
            headers = [(k, v) for k, v in headers if k.lower() != "www-authenticate"]
            headers.append(("WWW-Authenticate", f'Basic realm="{REALM}"'))
        return self.handle_response(status, body, headers)

    def save_token(self, token: dict, request) -> None:
        # Nothing to store: the token is self-contained (a signed JWT). One line for the audit trail.
        log.info(
            "issued an access token",
            extra={"client_id": request.client.get_client_id(), "scope": token.get("scope", "")},
        )


def init_app(app: Flask, auth: AuthSettings, tokens: TokenSettings, keys: SigningKeys) -> None:
    # Authlib's debug lines hold the tokens it issues ("Issue token {...}"): never logged, whatever the level.
    logging.getLogger("authlib").setLevel(max(logging.INFO, logging.getLogger().getEffectiveLevel()))
    server = Server(app, query_client=clients.find)
    server.scopes_supported = list(SCOPES)
    server.register_grant(ClientCredentialsGrant)
    server.register_token_generator("default", AccessTokens(auth, tokens, keys))
    app.extensions["auth.oauth"] = server
    app.extensions["auth.keys"] = keys
    app.extensions["auth.settings"] = auth
    app.register_blueprint(oauth)


def _malformed() -> str | None:
    """What makes the token request malformed beyond what Authlib checks (RFC 6749 §3.2, §4.4.2, §2.3)."""
    if request.mimetype != FORM:
        return f"the request body must be form-encoded (Content-Type: {FORM})"
    if request.args:
        return "the parameters go in the form-encoded body, not in the URL"
    repeated = [name for name in request.form if len(request.form.getlist(name)) > 1]
    if repeated:
        name = repeated[0] if _PARAMETER.fullmatch(repeated[0]) else "a parameter"
        return f"{name} is given more than once"
    if not request.form.get("grant_type"):
        return "grant_type is missing (client_credentials)"
    if request.headers.get("Authorization") and "client_secret" in request.form:
        return "the client authenticates one way: HTTP Basic or client_secret in the body, not both"
    return None


def _basic_credentials_readable() -> bool:
    """HTTP Basic credentials that Authlib can read, when the client sends some (RFC 7617: one space, then
    base64 of UTF-8 `id:secret`). Authlib's own parser raises on non-UTF-8 bytes and on odd whitespace."""
    header = request.headers.get("Authorization", "")
    scheme, space, value = header.partition(" ")
    if scheme.lower() != "basic":
        return True  # no Basic credentials: the form's, or none (Authlib says invalid_client)
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return False
    return space == " " and ":" in decoded


@oauth.post(TOKEN_PATH)
def issue_token() -> Response:
    server: Server = current_app.extensions["auth.oauth"]
    problem = _malformed()
    if problem is not None:
        return server.handle_error_response(None, InvalidRequestError(problem))
    if not _basic_credentials_readable():
        return server.handle_error_response(None, InvalidClientError())
    return server.create_token_response()


@oauth.get(JWKS_PATH)
def jwks() -> Response:
    response = jsonify(current_app.extensions["auth.keys"].jwks())
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


@oauth.get(METADATA_PATH)
def metadata() -> Response:
    issuer = current_app.extensions["auth.settings"].issuer
    return jsonify(
        issuer=issuer,
        token_endpoint=issuer + TOKEN_PATH,
        jwks_uri=issuer + JWKS_PATH,
        grant_types_supported=[clients.GRANT_TYPE],
        token_endpoint_auth_methods_supported=list(clients.AUTH_METHODS),
        scopes_supported=list(SCOPES),
        response_types_supported=[],
    )
