"""Run wrk against a loopback URL and read its figures (requests/s, p50, p99, errors)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from urllib.parse import urlsplit

from evidence.net import require_loopback

HERE = os.path.dirname(os.path.abspath(__file__))
LUA_DIR = os.path.join(HERE, "wrk")
MARKER = "ATLAS_WRK "


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int  # connect + read + write + timeout
    status_errors: int  # responses with status >= 400

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        return self.socket_errors + self.status_errors


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for our ASCII values


def _preamble(path: str, body: str, ids: list[str]) -> str:
    ids_lua = ", ".join(_lua_string(str(i)) for i in ids)
    return (
        f"atlas = {{nonce = {_lua_string(secrets.token_hex(4))}, path = {_lua_string(path)}, "
        f"body = {_lua_string(body)}, ids = {{{ids_lua}}}}}\n"
    )


def _script(workload: str | None, path: str, body: str, ids: list[str]) -> str:
    parts = [_preamble(path, body, ids)]
    if workload:
        with open(os.path.join(LUA_DIR, f"{workload}.lua")) as f:
            parts.append(f.read())
    with open(os.path.join(LUA_DIR, "report.lua")) as f:
        parts.append(f.read())
    return "\n".join(parts)


def parse(stdout: str) -> WrkResult:
    """Read the JSON line report.lua prints; fail loudly (with wrk's output) when it is missing."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            d = json.loads(line[len(MARKER) :])
            return WrkResult(
                requests=d["requests"],
                seconds=d["duration_us"] / 1e6,
                p50_ms=d["p50_us"] / 1000,
                p99_ms=d["p99_us"] / 1000,
                max_ms=d["max_us"] / 1000,
                socket_errors=d["connect"] + d["read"] + d["write"] + d["timeout"],
                status_errors=d["status"],
            )
    raise RuntimeError(f"wrk printed no {MARKER.strip()} line; its output was:\n{stdout}")


def run(
    url: str,
    *,
    duration: int,
    threads: int = 2,
    connections: int = 32,
    workload: str | None = None,
    body: str = "",
    ids: list[str] | None = None,
    timeout_s: int = 5,
    headers: dict[str, str] | None = None,
) -> WrkResult:
    """Load ``url`` for ``duration`` seconds. ``workload`` names a script in evidence/wrk/ (None: plain GET).
    ``headers`` go on every request of a plain GET or a workload that builds requests from wrk.headers
    (get_ids), as wrk's -H does; post_json sets its own."""
    parts = urlsplit(url)
    require_loopback(parts.hostname)
    wrk = shutil.which("wrk")
    if not wrk:
        raise RuntimeError("wrk not found: run `scripts/install-tools.sh wrk`")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_script(workload, parts.path, body, ids or []))
        script = f.name
    try:
        cmd = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", f"--timeout={timeout_s}s", "-s", script]
        for name, value in (headers or {}).items():
            cmd += ["-H", f"{name}: {value}"]
        cmd.append(url)
        # wrk stops itself after `duration`; the subprocess timeout is the belt to those braces
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, check=False)
    finally:
        os.unlink(script)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return parse(proc.stdout)
