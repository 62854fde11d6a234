"""Steady, bounded HTTP load for the fault drills, recording every request's outcome.

wrk measures speed; the drills need more than counts: which writes were acknowledged (and with which
id), when each response came and how long it took. A few Python threads are plenty for that.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import requests

from evidence.net import require_loopback_url


@dataclass(frozen=True)
class Outcome:
    started: float  # time.monotonic()
    elapsed: float  # seconds
    status: int | None  # None: no HTTP response (refused, reset, timed out)
    json: bool  # the response body parsed as JSON
    ident: str | None  # the created resource's id, for acknowledged writes
    body: dict | None  # what was sent

    @property
    def finished(self) -> float:
        return self.started + self.elapsed

    @property
    def label(self) -> str:
        return str(self.status) if self.status is not None else "no response"


class WriteLoad:
    """``threads`` loops POSTing ``make_body(n)`` to ``url`` until stopped, ``max_seconds`` or ``max_requests``."""

    def __init__(
        self,
        url: str,
        make_body: Callable[[int], dict],
        *,
        threads: int = 4,
        timeout: float = 10.0,
        max_seconds: float = 60.0,
        max_requests: int = 200_000,
        pause: float = 0.0,
    ) -> None:
        require_loopback_url(url)
        self.url, self.make_body, self.timeout, self.pause = url, make_body, timeout, pause
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self.outcomes: list[Outcome] = []
        self._lock = threading.Lock()
        self._seq = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]

    def __enter__(self) -> WriteLoad:
        self._deadline = time.monotonic() + self.max_seconds
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(self.timeout + 5)

    def _next(self) -> int | None:
        with self._lock:
            if self._seq >= self.max_requests:
                return None
            self._seq += 1
            return self._seq

    def _loop(self) -> None:
        session = requests.Session()
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            n = self._next()
            if n is None:
                break
            body = self.make_body(n)
            self._record(*_post(session, self.url, body, self.timeout), body)
            if self.pause:
                self._stop.wait(self.pause)
        session.close()

    def _record(self, started: float, elapsed: float, status: int | None, payload, body: dict) -> None:
        ident = None
        if status in (200, 201) and isinstance(payload, dict) and "id" in payload:
            ident = str(payload["id"])
        outcome = Outcome(started, elapsed, status, payload is not None, ident, body)
        with self._lock:
            self.outcomes.append(outcome)

    # -- reading the record ----------------------------------------------------------------------
    def between(self, start: float, end: float) -> list[Outcome]:
        """Requests sent in [start, end)."""
        with self._lock:
            return [o for o in self.outcomes if start <= o.started < end]

    def within(self, start: float, end: float) -> list[Outcome]:
        """Requests sent and answered inside [start, end]: those that saw only the fault."""
        with self._lock:
            return [o for o in self.outcomes if start <= o.started and o.finished <= end]

    def acknowledged(self) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.ident is not None]


def _post(session: requests.Session, url: str, body: dict, timeout: float):
    started = time.monotonic()
    try:
        r = session.post(url, json=body, timeout=timeout)
    except requests.RequestException:
        return started, time.monotonic() - started, None, None
    try:
        payload = r.json()
    except ValueError:
        payload = None
    return started, time.monotonic() - started, r.status_code, payload


def by_status(outcomes: list[Outcome]) -> str:
    """``201: 120, 503: 40, no response: 2`` - the drill tables' status column."""
    counts = Counter(o.label for o in outcomes)
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "none"


class Poller:
    """GET ``url`` every ``interval`` seconds in a thread; remembers (time, status) for each probe."""

    def __init__(self, url: str, *, interval: float = 0.1, timeout: float = 2.0, max_seconds: float = 120.0) -> None:
        require_loopback_url(url)
        self.url, self.interval, self.timeout, self.max_seconds = url, interval, timeout, max_seconds
        self.samples: list[tuple[float, int | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(self.timeout + 5)

    def _loop(self) -> None:
        session = requests.Session()
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.is_set() and time.monotonic() < deadline:
            t = time.monotonic()
            try:
                status = session.get(self.url, timeout=self.timeout).status_code
            except requests.RequestException:
                status = None
            self.samples.append((t, status))
            self._stop.wait(self.interval)
        session.close()

    def failures(self) -> int:
        return sum(1 for _, status in self.samples if status != 200)

    def first_ok_after(self, t0: float) -> float | None:
        """Seconds from ``t0`` to the first probe sent after it that answered 200 (None: never)."""
        for t, status in self.samples:
            if t >= t0 and status == 200:
                return t - t0
        return None
