"""The README's parameters table is what the real generator makes from values.yaml today."""

from __future__ import annotations

import os
import shutil
import subprocess

from tests.support.chart import CHART_DIR, REPO_ROOT

SCRIPT = os.path.join(REPO_ROOT, "scripts", "chart-docs.sh")


def check(chart_dir: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CHART_DIR": chart_dir}
    return subprocess.run([SCRIPT, "--check"], capture_output=True, text=True, env=env, timeout=600, check=False)


def test_parameters_table_is_up_to_date() -> None:
    proc = check(CHART_DIR)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_changed_default_makes_the_table_stale(tmp_path) -> None:
    copy = shutil.copytree(CHART_DIR, tmp_path / "atlas")
    values = copy / "values.yaml"
    values.write_text(values.read_text().replace("host: atlas.local", "host: renamed.local", 1))
    proc = check(str(copy))
    assert proc.returncode == 1
    assert "+| `ingress.host`" in proc.stdout and "renamed.local" in proc.stdout
