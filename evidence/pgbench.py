"""Run pgbench with Atlas's own scripts: PostgreSQL's ceiling for the services' round trips."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from evidence import db
from evidence.net import require_loopback

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = os.path.join(HERE, "pgbench")
INSERT_TABLE = (
    "CREATE TABLE IF NOT EXISTS atlas_bench_insert ("
    "id bigserial PRIMARY KEY, email text NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
)


@dataclass(frozen=True)
class PgbenchResult:
    """pgbench's own summary. No percentiles: with several clients per thread pgbench timestamps
    transactions lazily, so its per-transaction log reads 0 us for many sub-millisecond round trips."""

    tps: float
    transactions: int
    failed: int
    mean_ms: float


def _number(stdout: str, pattern: str) -> float:
    m = re.search(pattern, stdout, re.M)
    if not m:
        raise RuntimeError(f"pgbench printed no line matching {pattern!r}; its output was:\n{stdout}")
    return float(m.group(1))


def parse(stdout: str) -> PgbenchResult:
    failed = re.search(r"^number of failed transactions: (\d+)", stdout, re.M)
    return PgbenchResult(
        tps=_number(stdout, r"^tps = ([0-9.]+) \(without initial connection time\)"),
        transactions=int(_number(stdout, r"^number of transactions actually processed: (\d+)")),
        failed=int(failed.group(1)) if failed else 0,
        mean_ms=_number(stdout, r"^latency average = ([0-9.]+) ms"),
    )


def prepare(libpq_env: dict[str, str]) -> None:
    """Create the table the insert script writes to (idempotent)."""
    with db.connection(libpq_env) as conn, conn.cursor() as cur:
        cur.execute(INSERT_TABLE)


def run(libpq_env: dict[str, str], script: str, *, clients: int, threads: int, duration: int) -> PgbenchResult:
    """Run ``evidence/pgbench/<script>.sql`` for ``duration`` seconds with ``clients`` connections."""
    require_loopback(libpq_env["PGHOST"])
    pgbench = shutil.which("pgbench")
    if not pgbench:
        raise RuntimeError("pgbench not found: apt-get install postgresql-client")
    cmd = [
        pgbench, "--no-vacuum", f"--client={clients}", f"--jobs={threads}", f"--time={duration}",
        f"--file={os.path.join(SCRIPTS, script)}.sql",
    ]  # fmt: skip
    env = {**os.environ, **libpq_env}
    # pgbench stops itself after --time; the subprocess timeout is the belt to those braces
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=duration + 30, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"pgbench failed ({proc.returncode}): {proc.stderr or proc.stdout}")
    return parse(proc.stdout)
