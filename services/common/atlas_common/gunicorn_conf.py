"""gunicorn settings, all from the environment: ``gunicorn --config python:atlas_common.gunicorn_conf``."""

from __future__ import annotations

from atlas_common import metrics
from atlas_common.config import ConfigError, GunicornSettings, Settings
from atlas_common.logging import dict_config

try:
    _server = GunicornSettings.from_env()
    _app = Settings.from_env()
except ConfigError as _exc:
    raise SystemExit(str(_exc)) from None  # one clear line, no traceback

bind = _server.bind
workers = _server.workers
worker_class = "gthread"
threads = _server.threads
timeout = _server.timeout
graceful_timeout = _server.graceful_timeout  # after SIGTERM, in-flight requests get this long
keepalive = 5
# Import the app once in the master and fork it: workers start in milliseconds and share its pages.
# The app opens no connection at import, so nothing unforkable is shared.
preload_app = True
# The app writes one JSON line per request; gunicorn's own access log would double it.
accesslog = None
logconfig_dict = dict_config(_app.log_level)
# gunicorn >= 25 opens a runtime control socket under $HOME by default: an admin interface a pod
# does not need (Kubernetes scales and restarts), and a write outside /tmp.
control_socket_disable = True


def on_starting(server) -> None:
    metrics.reset_directory()


def child_exit(server, worker) -> None:
    # Drops the dead worker's live gauges (pool connections) from the sums.
    metrics.mark_worker_dead(worker.pid)
