"""gunicorn settings, all from the environment (atlas_common.config.Settings, the chart's ``config`` block):
``gunicorn --config python:atlas_common.gunicorn_conf``."""

from __future__ import annotations

from atlas_common import metrics
from atlas_common.config import ConfigError, Settings
from atlas_common.logging import dict_config

try:
    _settings = Settings.from_env()
except ConfigError as _exc:
    raise SystemExit(str(_exc)) from None  # one clear line, no traceback

bind = _settings.bind
workers = _settings.workers
worker_class = "gthread"
threads = _settings.threads
timeout = _settings.timeout
graceful_timeout = _settings.graceful_timeout  # after SIGTERM, in-flight requests get this long
keepalive = 5
# Import the app once in the master and fork it: workers start in milliseconds and share its pages.
# The app opens no connection at import, so nothing unforkable is shared.
preload_app = True
# The app writes one JSON line per request; gunicorn's own access log would double it.
accesslog = None
logconfig_dict = dict_config(_settings.log_level)
# gunicorn >= 25 opens a runtime control socket under $HOME by default: an admin interface a pod
# does not need (Kubernetes scales and restarts), and a write outside /tmp.
control_socket_disable = True


def on_starting(server) -> None:
    metrics.reset_directory()


def child_exit(server, worker) -> None:
    # Drops the dead worker's live gauges (pool connections) from the sums.
    metrics.mark_worker_dead(worker.pid)
