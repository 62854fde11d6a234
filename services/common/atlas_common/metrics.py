"""Prometheus metrics shared by all workers of a server (prometheus_client multiprocess mode).

Each worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR; a scrape of /metrics, served by
any one worker, adds them all up. prometheus_client picks its storage when it is first imported, so
the directory must be set and exist before that import.

A worker that is gone (killed, recycled) must leave the live gauges: the scrape itself drops the files
of processes that no longer run, so no server hook is needed (granian has none for a worker's exit).
"""

from __future__ import annotations

import contextlib
import glob
import os
import re

from .config import Settings

# The variable and its default as atlas_common.config declares them (read here, before the import below).
_DIR = next(d for d in Settings.declared() if d.name == "metrics_dir")
MULTIPROC_DIR = os.environ.setdefault(_DIR.env, _DIR.default)
os.makedirs(MULTIPROC_DIR, exist_ok=True)

from prometheus_client import (  # noqa: E402 - needs the directory above
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("atlas_http_requests_total", "HTTP requests served", ["service", "method", "endpoint", "status"])
LATENCY = Histogram(
    "atlas_http_request_duration_seconds",
    "Time to serve an HTTP request",
    ["service", "method", "endpoint", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
# livesum: the sum over the workers that are alive now (render() forgets the dead ones).
POOL_SIZE = Gauge("atlas_db_pool_size", "Configured database connections", ["service"], multiprocess_mode="livesum")
POOL_CONNECTIONS = Gauge(
    "atlas_db_pool_connections", "Open database connections by state", ["service", "state"], multiprocess_mode="livesum"
)


def observe_request(service: str, method: str, endpoint: str, status: int, seconds: float) -> None:
    labels = (service, method, endpoint, str(status))
    REQUESTS.labels(*labels).inc()
    LATENCY.labels(*labels).observe(seconds)


def pool_observer(service: str):
    """A db.Pool observer that keeps this worker's pool gauges current.

    It runs twice per request (borrow, return), so it writes only the values that changed: each write
    is a locked write to a memory-mapped file, and /db-status is meant to stay nearly as cheap as /livez.
    """
    gauges = (
        POOL_SIZE.labels(service),
        POOL_CONNECTIONS.labels(service, "in_use"),
        POOL_CONNECTIONS.labels(service, "idle"),
    )
    last = [-1, -1, -1]

    def observe(*values: int) -> None:
        for i, value in enumerate(values):
            if value != last[i]:
                last[i] = value
                gauges[i].set(value)

    return observe


def render() -> tuple[bytes, str]:
    forget_dead_workers()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
    return generate_latest(registry), CONTENT_TYPE_LATEST


def reset_directory() -> None:
    """Remove samples left by a previous server (at the server's start, before any worker)."""
    for path in glob.glob(os.path.join(MULTIPROC_DIR, "*.db")):
        os.unlink(path)


# prometheus_client names a live gauge's file gauge_live<mode>_<pid>.db (multiprocess.mark_process_dead).
_LIVE_GAUGE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def forget_dead_workers() -> None:
    """Drop the live gauges of processes that no longer run; their counters and histograms stay summed."""
    pids = {int(m[1]) for m in map(_LIVE_GAUGE_FILE.match, os.listdir(MULTIPROC_DIR)) if m}
    for pid in pids - {os.getpid()}:
        if not _running(pid):
            with contextlib.suppress(FileNotFoundError):  # another worker's scrape was first
                multiprocess.mark_process_dead(pid, MULTIPROC_DIR)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it runs
        return True
    # A zombie (exited, not yet reaped by the server) has stopped serving too.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, IndexError):
        return False
