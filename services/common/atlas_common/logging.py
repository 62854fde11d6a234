"""JSON log lines (one object per line), for the app and for the HTTP server itself.

The access log writes a line per request, so a line must be cheap: orjson instead of json (about a tenth
of the time), the date formatted once a second, and no thread or multiprocessing names looked up for
every record (the logging HOWTO's "Optimization"). `make bench` measures what the access log costs.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import orjson

from . import request_id as _request_id

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged as a field.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# No line shows them: spare every record the lookups (the logging HOWTO's "Optimization" table names these
# switches, _srcfile included: no stack walk for the caller's file and line).
logging.logThreads = False
logging.logMultiprocessing = False
logging._srcfile = None

# Paths only machines ask for: kubelet's probes and Prometheus' scrape (ATLAS_ACCESS_LOG=no-probes).
PROBE_PATHS = frozenset({"/livez", "/readyz", "/metrics"})


class _Seconds(threading.local):
    """The "YYYY-MM-DDTHH:MM:SS" of the last second formatted, per thread."""

    second = -1
    text = ""


class JsonFormatter(logging.Formatter):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seconds = _Seconds()

    def _timestamp(self, created: float, msecs: float) -> str:
        cache, second = self._seconds, int(created)
        if cache.second != second:
            cache.second, cache.text = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{cache.text}.{int(msecs):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self._timestamp(record.created, record.msecs),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which worker
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        # Any line logged while serving a request (a warning, a traceback) carries its id, so one query
        # finds everything a request did. Handlers format in the logging thread: the request is current.
        if "request_id" not in entry and (rid := _request_id.current()) is not None:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def dict_config(level: str) -> dict[str, Any]:
    """A logging.config dict: everything to stderr as JSON, the server's own loggers included (granian
    logs as ``_granian``; its access log, ``granian.access``, is off: the app writes its own)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "_granian": {"level": level, "handlers": ["stderr"], "propagate": False},
            "granian.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
        },
    }


access_log = logging.getLogger("atlas.access")


def log_request(method: str, path: str, status: int, duration_ms: float, request_id: str) -> None:
    access_log.info(
        "%s %s %s",
        method,
        path,
        status,
        extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms, "request_id": request_id},
    )
