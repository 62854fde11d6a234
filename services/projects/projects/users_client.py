"""Asks the users service whether a user exists: timeout, bounded retries with backoff, clear errors.

urllib3 directly, not requests: requests adds nothing this client uses (cookies, auth, redirects, JSON)
and, for every call, scanned the environment for proxy variables, looked for a ~/.netrc file and merged
and prepared the request anew: about 0.7 ms of CPU per call against urllib3's 0.25 ms, and some 40% of
a projects worker's Python time under `make bench` load (py-spy). So the call also goes straight to
USERS_SERVICE_URL, never through a proxy named in the environment, as a call inside the cluster should.

The call carries the caller's own Authorization header: users checks the token as it checks any other
(scope users:read). When users refuses it, so does projects, saying why: users' 403 (the token lacks
users:read) is a 403 ``insufficient_scope`` naming users:read; users' 401 on a token projects has just
accepted means the two services disagree on what a valid token is (issuer, audience or keys: a deployment
error, not the caller's), a 502 ``dependency_error`` quoting users' reason.
"""

from __future__ import annotations

import json

from atlas_common import bearer, request_id
from atlas_common.config import Settings
from atlas_common.errors import ApiError
from atlas_common.outbound import reason
from flask import has_request_context, request
from urllib3 import HTTPConnectionPool, Retry, Timeout
from urllib3.connectionpool import connection_from_url
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.response import BaseHTTPResponse
from urllib3.util import parse_url

from projects.config import UsersServiceSettings

DEPENDENCY = "users"
USERS_SCOPE = "users:read"  # what users' GET /api/v1/users/<id> needs (users.api: read_scope)

# Every thread that calls at once holds a connection; urllib3 opens them on demand and keeps each one
# (keep-alive) as long as the pool has room for it. A pool smaller than the threads would close the extra
# ones after every call: a new TCP connection per request under load. Room costs nothing (a slot is
# None until a connection is made), so the pool is sized to the most threads a worker may have;
# a worker never has more open connections than its ATLAS_THREADS.
POOL_SIZE = int(next(d.maximum for d in Settings.declared() if d.name == "threads"))


class UsersClient:
    def __init__(self, settings: UsersServiceSettings) -> None:
        if settings.url is None:
            raise ValueError("UsersClient needs USERS_SERVICE_URL")
        self.base_url = settings.url
        self.timeout = settings.timeout
        self._path = (parse_url(self.base_url).path or "").rstrip("/") + "/api/v1/users/"
        # Retry what is safe and likely to pass: refused/reset connections and 5xx answers of an idempotent
        # GET. Not read timeouts: a slow service would only get slower, and the caller waits for each one.
        retry = Retry(
            total=settings.retries,
            connect=settings.retries,
            read=0,
            status=settings.retries,
            other=0,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            backoff_factor=0.2,  # urllib3: 0, 0.4s, 0.8s, ...
            respect_retry_after_header=False,
            raise_on_status=False,
        )
        # Built once, in the process that forks the workers; it opens no connection until the first call,
        # so each worker opens its own, shared by its threads. (The test fixtures close it: session.close().)
        self.session: HTTPConnectionPool = connection_from_url(
            self.base_url,
            maxsize=POOL_SIZE,
            block=False,
            retries=retry,
            timeout=Timeout(connect=self.timeout, read=self.timeout),
        )

    def _headers(self) -> dict[str, str]:
        """What each call passes on to the users service from the request being served (one line each)."""
        headers = {}
        rid = request_id.current()
        if rid:
            headers[request_id.HEADER] = rid
        authorization = request.headers.get("Authorization") if has_request_context() else None
        if authorization:
            headers["Authorization"] = authorization  # the caller's token: users checks it for users:read
        return headers

    def ensure_user_exists(self, user_id: int) -> None:
        """Return if the user exists; raise ApiError (422, 502, 503, 504) otherwise."""
        try:
            # preload_content: the body is read (not decoded: only the status matters) and the connection
            # goes back to the pool at once.
            response = self.session.urlopen("GET", f"{self._path}{user_id}", headers=self._headers(), redirect=False)
        except HTTPError as exc:
            if _timed_out(exc):
                message = f"the users service did not answer within {self.timeout:g}s"
                raise self._error(504, "dependency_timeout", message) from None
            message = f"the users service is unavailable: {reason(exc)}"
            raise self._error(503, "dependency_unavailable", message) from None
        if response.status == 200:
            return
        if response.status == 404:
            raise ApiError(422, "owner_not_found", f"owner_id {user_id}: no such user in the users service")
        if response.status >= 500:
            raise self._error(503, "dependency_unavailable", f"the users service answered {response.status}")
        if response.status == 403:
            raise bearer.insufficient_scope(
                USERS_SCOPE,
                f"the owner check reads the user from the users service, which needs the scope {USERS_SCOPE}: "
                f"the token lacks it ({_said(response)})",
                {"required": USERS_SCOPE, "dependency": DEPENDENCY, "url": self.base_url},
            )
        if response.status == 401:
            raise self._error(
                502,
                "dependency_error",
                f"the users service refused the token this service accepted ({_said(response)}): "
                "the two disagree on ATLAS_AUTH_ISSUER, ATLAS_AUTH_AUDIENCE or the signing keys",
            )
        raise self._error(502, "dependency_error", f"the users service answered {response.status} unexpectedly")

    def _error(self, status: int, code: str, message: str) -> ApiError:
        return ApiError(status, code, message, {"dependency": DEPENDENCY, "url": self.base_url})


def _timed_out(exc: HTTPError) -> bool:
    # urllib3 raises what the Retry policy gave up on as MaxRetryError(reason=the last error).
    reason = exc.reason if isinstance(exc, MaxRetryError) else exc
    # urllib3's NewConnectionError (refused, unreachable) subclasses ConnectTimeoutError: not a timeout.
    return isinstance(reason, Urllib3Timeout) and not isinstance(reason, NewConnectionError)


def _said(response: BaseHTTPResponse) -> str:
    """What the users service's error body says ("users said: ..."), or its status alone."""
    try:
        message = json.loads(response.data)["error"]["message"]
    except (ValueError, TypeError, KeyError):
        return f"users answered {response.status}"
    return f"users answered {response.status}: {str(message)[:300]}"
