"""The one rule every suite obeys before it sends traffic: loopback only."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

LOOPBACK_NAMES = {"localhost"}


def require_loopback(host: str | None) -> None:
    """Raise unless ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host in LOOPBACK_NAMES:
        return
    try:
        if ipaddress.ip_address(host or "").is_loopback:
            return
    except ValueError:
        pass
    raise ValueError(f"the evidence suites only send traffic to loopback addresses, not {host!r}")


def require_loopback_url(url: str) -> None:
    require_loopback(urlsplit(url).hostname)
