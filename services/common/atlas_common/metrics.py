"""Prometheus metrics shared by all workers of a server (prometheus_client multiprocess mode).

Each worker writes its samples to files in PROMETHEUS_MULTIPROC_DIR; a scrape of /metrics, served by
any one worker, adds them all up. prometheus_client picks its storage when it is first imported, so
the directory must be set and exist before that import.

A worker that is gone (killed, recycled) must leave the live gauges, and its files must not pile up in
/tmp (a small emptyDir) as workers come and go: the scrape itself drops the live gauges of processes that
no longer run and folds their counters and histograms into one archive file per type, so nothing counted
is lost and no server hook is needed (granian has none for a worker's exit). Scrapes read under a shared
lock and the fold holds it exclusively, so no scrape sees a file vanish or a count twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import re
from collections.abc import Iterator

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
from prometheus_client.mmap_dict import MmapedDict  # noqa: E402 - the storage the multiprocess files use

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


# (service, method, endpoint, status) -> the counter's and the histogram's child for those labels. labels()
# takes a lock and builds the key every time; the label sets are few (endpoints are url rules, not paths).
_children: dict[tuple[str, str, str, int], tuple] = {}


def observe_request(service: str, method: str, endpoint: str, status: int, seconds: float) -> None:
    key = (service, method, endpoint, status)
    children = _children.get(key)
    if children is None:
        labels = (service, method, endpoint, str(status))
        children = _children.setdefault(key, (REQUESTS.labels(*labels), LATENCY.labels(*labels)))
    children[0].inc()
    children[1].observe(seconds)


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
    with _locked(fcntl.LOCK_SH):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=MULTIPROC_DIR)
        return generate_latest(registry), CONTENT_TYPE_LATEST


def reset_directory() -> None:
    """Remove samples left by a previous server (at the server's start, before any worker)."""
    for path in glob.glob(os.path.join(MULTIPROC_DIR, "*.db")):
        os.unlink(path)


# prometheus_client names a process's files <type>_<pid>.db, a live gauge's gauge_live<mode>_<pid>.db.
_WORKER_FILE = re.compile(r"^(?:counter|histogram|gauge_live\w+?)_(\d+)\.db$")
# What a dead worker counted stays counted: folded into <type>_archive.db, which the collector reads as
# one more process of that type (it takes the type from the name's first part).
_ARCHIVED = ("counter", "histogram")


def forget_dead_workers() -> None:
    """Drop the live gauges of processes that no longer run, and fold their counters and histograms into
    the archive files."""
    pids = {int(m[1]) for m in map(_WORKER_FILE.match, os.listdir(MULTIPROC_DIR)) if m}
    dead = [pid for pid in pids - {os.getpid()} if not _running(pid)]
    if not dead:
        return
    with _locked(fcntl.LOCK_EX):
        for pid in dead:
            with contextlib.suppress(FileNotFoundError):  # another worker's scrape was first
                multiprocess.mark_process_dead(pid, MULTIPROC_DIR)
            for kind in _ARCHIVED:
                path = os.path.join(MULTIPROC_DIR, f"{kind}_{pid}.db")
                if os.path.exists(path):  # under the lock: no other worker folds it at the same time
                    _fold(path, os.path.join(MULTIPROC_DIR, f"{kind}_archive.db"))
                    os.unlink(path)


def _fold(source: str, archive: str) -> None:
    """Add every value of ``source`` to ``archive`` (created when missing)."""
    target = MmapedDict(archive)
    try:
        held = {key: value for key, value, _ in target.read_all_values()}
        for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(source):
            target.write_value(key, held.get(key, 0.0) + value, timestamp)
    finally:
        target.close()


@contextlib.contextmanager
def _locked(mode: int) -> Iterator[None]:
    """flock on the directory's lock file: shared for a scrape, exclusive for a fold."""
    fd = os.open(os.path.join(MULTIPROC_DIR, "archive.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, mode)
        yield
    finally:
        os.close(fd)  # releases the lock


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
