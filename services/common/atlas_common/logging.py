"""JSON log lines (one object per line), for the app and for gunicorn itself."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from . import request_id as _request_id

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged as a field.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,  # which gunicorn worker
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        # Any line logged while serving a request (a warning, a traceback) carries its id, so one query
        # finds everything a request did. Handlers format in the logging thread: the request is current.
        if "request_id" not in entry and (rid := _request_id.current()) is not None:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def dict_config(level: str) -> dict[str, Any]:
    """A logging.config dict: everything to stderr as JSON. Used by gunicorn_conf as logconfig_dict."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
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
