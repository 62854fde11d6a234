"""Serve a service's WSGI app with granian: ``python -m <service> serve``.

Why granian (a Rust HTTP server with a WSGI interface) and not gunicorn: on the same app and settings
it serves about twice the requests per second at a fifth of the p99 (`make bench` measures both side
by side; services/README.md has the figures). Everything gunicorn did for Atlas is kept:

- workers are forked from this process after the app is imported once here (gunicorn's preload_app):
  they start in milliseconds and share its pages; the app opens no connection at import, and the pool
  starts empty in each worker (db.Pool checks the pid);
- SIGTERM: granian stops accepting, lets each worker finish what it is serving and stops it, killing a
  worker only after ``gracefulTimeout`` seconds;
- a worker that dies is replaced (``respawn_failed_workers``); one that outlives ``workerLifetime`` or
  grows past ``workerMaxRss`` is replaced gracefully, a new one first;
- JSON log lines for granian's own messages too (logging.dict_config); granian's access log stays off,
  the app writes its own line;
- the Prometheus multiprocess directory is emptied here, before any worker writes to it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from .config import ConfigError, Settings
from .logging import dict_config


def serve(target: str) -> int:
    """Run ``module:attribute`` (a WSGI app) until SIGTERM/SIGINT; the exit status. A bad setting: one
    line on stderr and 2, before anything starts (as `migrate`)."""
    from . import metrics

    try:
        settings = Settings.from_env()
        metrics.reset_directory()  # samples of an earlier server in this container would add to ours
        app = _load(target)  # once, here: every worker is forked with it (see the module's doc)
    except ConfigError as exc:  # the shared settings, or a service's own blocks (read by its app)
        print(exc, file=sys.stderr)
        return 2

    from granian.constants import HTTPModes, Interfaces
    from granian.log import LogLevels
    from granian.server import Server

    host, _, port = settings.bind.rpartition(":")
    server = Server(
        target,
        address=host,
        port=int(port),
        interface=Interfaces.WSGI,
        http=HTTPModes.http1,  # kubelet probes, Services and the ingress speak HTTP/1.1 to a pod
        websockets=False,
        workers=settings.workers,
        # One Python thread per request being served, as many as the pool has connections for; further
        # requests wait in granian's Rust queue, where waiting costs no thread and no GIL. (Not
        # `backpressure`: it bounds open connections, and idle keep-alive ones would lock callers out.)
        blocking_threads=settings.threads,
        respawn_failed_workers=True,
        workers_kill_timeout=settings.graceful_timeout,
        workers_lifetime=settings.worker_lifetime,
        workers_max_rss=settings.worker_max_rss,
        log_level=LogLevels(settings.log_level.lower()),  # granian sets its own logger's level from this
        log_dictconfig=dict_config(settings.log_level),
        log_access=False,  # the app's own access line (logging.log_request) has the request id
    )
    server.serve(target_loader=_loaded(app))
    return 0


def _load(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    module = __import__(module_name, fromlist=["_"])
    return getattr(module, attribute or "app")


def _loaded(app: Any) -> Callable[[str], Any]:
    """granian's target loader, run in each worker after the fork: the app imported before it."""

    def loader(_target: str) -> Any:
        return app

    return loader


if __name__ == "__main__":  # python -m atlas_common.server module:app (the services use `python -m <service> serve`)
    if len(sys.argv) != 2:
        sys.exit("usage: python -m atlas_common.server MODULE:APP")
    sys.exit(serve(sys.argv[1]))
