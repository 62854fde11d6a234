"""The public keys that verify access tokens, by key id (``kid``): the auth service's own (``LocalKeys``),
or the set it publishes at ATLAS_AUTH_JWKS_URL, fetched over HTTP and cached (``RemoteJwks``).

The JOSE work (parsing a JWK set, the keys) is joserfc's, the JOSE library Authlib is built on. The cache
is ours, because a verifier needs more than "fetch, keep for N seconds": it must not take users and
projects down when the auth service is briefly away, nor let a flood of made-up key ids become a flood of
fetches. So:

- nothing is fetched at start: a service starts, and its probes answer, while auth is not up yet; the first
  token to check fetches the set (one thread at a time; the others wait for its answer);
- a set is used for ``lifespan`` seconds, then fetched again, by the request that finds it old; while that
  refresh fails, the keys fetched before stay in use (a warning is logged), and a failed fetch is not tried
  again for ``retry_after`` seconds, so during an outage one request per worker every ``retry_after``
  seconds waits up to the timeouts (connect and read), not every request;
- a key id not in the set (the auth service rotated its key) fetches the set again at once, but at most
  once per ``refetch_after`` seconds;
- when no set was ever fetched and the fetch fails, ``KeysUnavailable``: the request gets 503
  ``auth_unavailable`` (bearer.py), not 401: the token may well be valid.

The call goes straight to the URL with urllib3 (no proxy from the environment, as in projects'
users_client), with bounded connect and read timeouts and no redirects.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, Key, KeySet, RSAKey
from urllib3 import Timeout
from urllib3.connectionpool import connection_from_url
from urllib3.exceptions import HTTPError
from urllib3.util import parse_url

from .outbound import reason

log = logging.getLogger("atlas.keys")

MIN_RSA_BITS = 2048


class KeysUnavailable(Exception):
    """The key set could not be fetched and none was fetched before."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url, self.reason = url, reason


def algorithm(key: Key) -> str | None:
    """The one algorithm ``key`` verifies Atlas tokens with (a token's `alg` must be its key's: no algorithm
    chosen by the token itself, so no confusion between key types), or None for a key Atlas does not use
    (another curve, a short RSA key)."""
    if isinstance(key, ECKey):
        return "ES256" if key.curve_name == "P-256" else None
    if isinstance(key, RSAKey):
        return "RS256" if key.raw_value.key_size >= MIN_RSA_BITS else None
    return None


def usable(keys: KeySet) -> dict[str, Key]:
    """The signature keys of a set by kid, each checked: Atlas' algorithms only, `use` sig, `alg` matching."""
    found: dict[str, Key] = {}
    for key in keys:
        alg = algorithm(key)
        if alg is None or not key.kid or key.get("use", "sig") != "sig" or key.get("alg", alg) != alg:
            continue
        found[key.kid] = key
    return found


class LocalKeys:
    """Keys at hand (the auth service checks the tokens of its own admin API with its own keys)."""

    url = None

    def __init__(self, keys: KeySet) -> None:
        self._keys = usable(keys)

    def key(self, kid: str) -> Key | None:
        return self._keys.get(kid)

    def close(self) -> None:
        pass


class RemoteJwks:
    """The JWK set published at ``url``, cached as the module's docstring says."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 2.0,
        lifespan: float = 300.0,
        retry_after: float = 5.0,
        refetch_after: float = 10.0,
    ) -> None:
        self.url = url
        self.timeout = timeout
        self.lifespan, self.retry_after, self.refetch_after = lifespan, retry_after, refetch_after
        parts = parse_url(url)
        self._target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        # Built where the app is built, before the workers fork; no connection is opened until the first fetch.
        self._pool = connection_from_url(
            url, maxsize=1, block=False, retries=False, timeout=Timeout(connect=timeout, read=timeout)
        )
        self._lock = threading.Lock()
        self._keys: dict[str, Key] | None = None
        self._fetched_at = -math.inf  # time.monotonic() of the last successful fetch
        self._failed_at = -math.inf
        self._failure = ""

    def key(self, kid: str) -> Key | None:
        """The key named ``kid``, or None when the published set has none by that id."""
        keys = self._keys
        if keys is None or time.monotonic() - self._fetched_at >= self.lifespan:
            keys = self._fetch(younger_than=self.lifespan, wait=keys is None)
        if kid in keys:
            return keys[kid]
        # Perhaps a new key (a rotation): look again, unless the set is very fresh already.
        return self._fetch(younger_than=self.refetch_after, wait=True).get(kid)

    def _fetch(self, younger_than: float, wait: bool) -> dict[str, Key]:
        """The set, fetched now unless one younger than ``younger_than`` seconds is at hand. Without ``wait``,
        while another thread is fetching, the keys at hand are used."""
        if not self._lock.acquire(blocking=wait):
            return self._keys  # not None: wait is False only when keys are at hand
        try:
            now = time.monotonic()
            if self._keys is not None and now - self._fetched_at < younger_than:
                return self._keys  # another thread fetched while this one waited
            if now - self._failed_at < self.retry_after:
                return self._stale_or_raise()
            try:
                self._keys, self._fetched_at = self._download(), time.monotonic()
            except KeysUnavailable as exc:
                self._failed_at, self._failure = time.monotonic(), exc.reason
                if self._keys is not None:
                    log.warning(
                        "cannot refresh the token signing keys, using those fetched %.0f s ago: %s",
                        now - self._fetched_at,
                        exc,
                    )
                return self._stale_or_raise()
            return self._keys
        finally:
            self._lock.release()

    def _stale_or_raise(self) -> dict[str, Key]:
        if self._keys is None:
            raise KeysUnavailable(self.url, self._failure)
        return self._keys

    def _download(self) -> dict[str, Key]:
        try:
            response = self._pool.urlopen(
                "GET", self._target, headers={"Accept": "application/json"}, redirect=False, retries=False
            )
        except HTTPError as exc:
            raise KeysUnavailable(self.url, reason(exc)) from None
        if response.status != 200:
            raise KeysUnavailable(self.url, f"answered {response.status}")
        try:
            keys = usable(KeySet.import_key_set(json.loads(response.data)))
        except (ValueError, TypeError, KeyError, JoseError) as exc:
            raise KeysUnavailable(self.url, f"not a JWK set: {exc}") from None
        if not keys:
            raise KeysUnavailable(self.url, "the JWK set holds no ES256 or RS256 signature key with a kid")
        return keys

    def close(self) -> None:
        self._pool.close()
