"""Asks the users service whether a user exists: timeout, bounded retries with backoff, clear errors."""

from __future__ import annotations

import requests
from atlas_common import request_id
from atlas_common.errors import ApiError
from requests.adapters import HTTPAdapter
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util.retry import Retry

from projects.config import UsersServiceSettings

DEPENDENCY = "users"


class UsersClient:
    def __init__(self, settings: UsersServiceSettings) -> None:
        if settings.url is None:
            raise ValueError("UsersClient needs USERS_SERVICE_URL")
        self.base_url = settings.url
        self.timeout = settings.timeout
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
        self.session = requests.Session()  # keeps connections to the users service open between requests
        self.session.mount(self.base_url, HTTPAdapter(max_retries=retry))

    def ensure_user_exists(self, user_id: int) -> None:
        """Return if the user exists; raise ApiError (422, 502, 503, 504) otherwise."""
        url = f"{self.base_url}/api/v1/users/{user_id}"
        rid = request_id.current()
        headers = {request_id.HEADER: rid} if rid else {}
        try:
            response = self.session.get(url, headers=headers, timeout=self.timeout, allow_redirects=False)
        except requests.RequestException as exc:
            if _timed_out(exc):
                message = f"the users service did not answer within {self.timeout:g}s"
                raise self._error(504, "dependency_timeout", message) from None
            message = f"the users service is unavailable: {_reason(exc)}"
            raise self._error(503, "dependency_unavailable", message) from None
        if response.status_code == 200:
            return
        if response.status_code == 404:
            raise ApiError(422, "owner_not_found", f"owner_id {user_id}: no such user in the users service")
        if response.status_code >= 500:
            raise self._error(503, "dependency_unavailable", f"the users service answered {response.status_code}")
        raise self._error(502, "dependency_error", f"the users service answered {response.status_code} unexpectedly")

    def _error(self, status: int, code: str, message: str) -> ApiError:
        return ApiError(status, code, message, {"dependency": DEPENDENCY, "url": self.base_url})


def _timed_out(exc: requests.RequestException) -> bool:
    # With a Retry policy, requests reports a read timeout as ConnectionError(MaxRetryError(ReadTimeoutError)).
    if isinstance(exc, requests.Timeout):
        return True
    # urllib3's NewConnectionError (refused, unreachable) subclasses ConnectTimeoutError: not a timeout.
    reason = exc.args[0].reason if exc.args and isinstance(exc.args[0], MaxRetryError) else None
    return isinstance(reason, Urllib3Timeout) and not isinstance(reason, NewConnectionError)


def _reason(exc: requests.RequestException) -> str:
    """The innermost cause ('Connection refused'), not urllib3's paragraph around it."""
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__
    text = str(cause)
    return text.rsplit("] ", 1)[-1] if "] " in text else text or type(exc).__name__
