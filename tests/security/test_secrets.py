"""No secret enters the repository: detect-secrets over every tracked and every new (not ignored) file.

Findings already reviewed and accepted live in .secrets.baseline (its settings - plugins and filters -
are the ones used here). Its filters skip two kinds of line that name rather than hold a secret: sha256
checksums, and keys that reference a Kubernetes Secret or a password *source* (existingSecret, secretName,
secretKey, *password_source). After reviewing a new finding that is not a secret, refresh the baseline
with scripts/secrets-baseline.sh, then label it: detect-secrets audit .secrets.baseline
"""

from __future__ import annotations

import os
import subprocess

import pytest
from detect_secrets import SecretsCollection
from detect_secrets.core import baseline

BASELINE = ".secrets.baseline"


def _candidate_files(repo_root: str) -> list[str]:
    """Tracked files plus untracked ones git does not ignore: a secret is caught before it is committed."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo_root, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    paths = sorted({p for p in out.split("\0") if p})
    return [p for p in paths if p != BASELINE and os.path.isfile(os.path.join(repo_root, p))]


@pytest.fixture(scope="module")
def known(repo_root: str) -> SecretsCollection:
    """The reviewed findings; loading them also configures detect-secrets with the baseline's settings."""
    path = os.path.join(repo_root, BASELINE)
    return baseline.load(baseline.load_from_file(path), filename=path)


def _scan(monkeypatch, root: str, files: list[str]) -> SecretsCollection:
    # Scan from inside ``root`` with relative names: findings then carry the same file names as the
    # baseline's, which is what detect-secrets compares (with root=..., they would be absolute).
    monkeypatch.chdir(root)
    found = SecretsCollection()
    found.scan_files(*files, num_processors=2)
    return found


def test_no_secret_outside_the_baseline(monkeypatch, repo_root: str, known: SecretsCollection) -> None:
    files = _candidate_files(repo_root)
    assert files, "git listed no files to scan"
    new = _scan(monkeypatch, repo_root, files) - known
    findings = [f"{name}:{secret.line_number} {secret.type}" for name, secret in new]
    assert not findings, "possible secrets not in .secrets.baseline (remove them, or review and re-baseline):\n" + (
        "\n".join(sorted(findings))
    )


def test_the_scan_with_baseline_settings_finds_a_planted_secret(
    monkeypatch, tmp_path, known: SecretsCollection
) -> None:
    # Proves the check above can fail: the baseline's plugins and filters still catch an obvious key.
    # The key is assembled at run time so this file itself holds none.
    planted = tmp_path / "settings.py"
    planted.write_text('aws_access_key_id = "' + "AKIA" + "QX7R4MZK2PLW9YTN" + '"\n')
    found = _scan(monkeypatch, str(tmp_path), ["settings.py"])
    assert [secret.type for _, secret in found] == ["AWS Access Key"]
