"""`make bench` in its short mode (BENCH_SHORT=1: a second a run), so the harness cannot rot unseen.

It judges no speed: the run must measure every figure (a figure it cannot take fails it) and print
every table with the goals, each marked pass or MISS. Speed belongs to `make bench`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from evidence.report import BUILD_DIR

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLES = (
    "Servers side by side",
    "Access log: what a line costs",
    "Throughput and latency",
    "Token check",
    "Connection pool",
    "One process",
    "Goals (issue 14)",
)
GOALS = 6


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed: scripts/install-tools.sh wrk")
def test_every_figure_is_measured_in_short_mode():
    env = {**os.environ, "BENCH_SHORT": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "evidence.bench"], cwd=REPO, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with open(os.path.join(BUILD_DIR, "bench-short.md"), encoding="utf-8") as f:
        written = f.read()
    for title in TABLES:
        assert f"### {title}" in written, title
    goals = written.split("### Goals (issue 14)", 1)[1]
    verdicts = re.findall(r"\| (pass|MISS) +\|", goals)
    assert len(verdicts) == GOALS, goals
    # Every figure is a number: a row with an em dash or nan where a figure belongs was not measured.
    for row in re.findall(r"^\| .+ \|$", goals, re.MULTILINE)[2:]:
        assert re.search(r"\| [0-9][0-9,.]* +\| (pass|MISS)", row), row


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed: scripts/install-tools.sh wrk")
def test_a_server_that_answers_nothing_is_not_measured(monkeypatch):
    """The verdict the short mode relies on: no answer is a failure, not a figure of 0 req/s."""
    import socket

    from evidence import bench

    monkeypatch.setattr(bench, "SECONDS", 1)
    with socket.socket() as silent:  # listens, never reads: wrk connects and waits for an answer in vain
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/livez"
        with pytest.raises(bench.NotMeasured, match="no answer"):
            bench._measure(url, [])
