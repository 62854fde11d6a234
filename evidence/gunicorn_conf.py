"""gunicorn gthread with the settings Atlas' own server gets (`make bench` compares the two):
``gunicorn --config python:evidence.gunicorn_conf users.wsgi:app``.

Same Settings, same JSON logging, same metrics directory handling, the app imported once and forked
(preload), as atlas_common.server does with granian. Not what the image runs: see services/README.md.
"""

from __future__ import annotations

from atlas_common import metrics
from atlas_common.config import ConfigError, Settings
from atlas_common.logging import dict_config

try:
    _settings = Settings.from_env()
except ConfigError as _exc:
    raise SystemExit(str(_exc)) from None

bind = _settings.bind
workers = _settings.workers
worker_class = "gthread"
threads = _settings.threads
graceful_timeout = _settings.graceful_timeout
keepalive = 5
preload_app = True
accesslog = None  # the app writes its own line
logconfig_dict = dict_config(_settings.log_level)
control_socket_disable = True  # gunicorn >= 25: no admin socket under $HOME


def on_starting(server) -> None:
    metrics.reset_directory()
