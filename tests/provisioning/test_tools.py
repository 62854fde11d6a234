"""The tools role's decisions and its download path, against a real HTTP server on 127.0.0.1.

Real: ansible-playbook, the tools role, get_url (its sha256 check), unarchive and copy. Stand-in: the
release servers, serving a tiny executable the way each official one serves its release:
- a plain binary with a `.sha256` file holding the hex digest alone, as storage.googleapis.com/minikube
  publishes minikube (kubernetes/minikube v1.35.0, Makefile target `checksum`: `openssl sha256 | awk
  '{print $2}'`) and dl.k8s.io kubectl (kubectl.sha256; G: recalled, not read at the source);
- a `.tar.gz` whose binary sits in `<os>-<arch>/`, with a `.sha256sum` file of `<digest>  <file name>`, as
  get.helm.sh publishes helm (helm/helm v3.17.3, Makefile target `checksum`: `shasum -a 256` of each
  archive, the `_dist/` prefix removed).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import os
import stat
import tarfile
import threading
from functools import partial

import pytest

from tests.provisioning.ansible_run import run_playbook

PLAYBOOK = "tests/provisioning/playbooks/tools.yml"
TOOL = "atlasfake"
SCRIPT = b"#!/bin/sh\necho 'atlasfake v1.2.3'\n"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest output clean; requests are recorded instead
        self.server.requests.append(self.path)


@pytest.fixture
def release_server(tmp_path):
    """Serves <root>/<name> over HTTP on 127.0.0.1; records every requested path."""
    root = tmp_path / "www"
    root.mkdir()
    (root / TOOL).write_bytes(SCRIPT)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo(f"linux-amd64/{TOOL}")
        info.size, info.mode = len(SCRIPT), 0o755
        tar.addfile(info, io.BytesIO(SCRIPT))
    (root / f"{TOOL}.tar.gz").write_bytes(archive.getvalue())
    for name in (TOOL, f"{TOOL}.tar.gz"):
        digest = hashlib.sha256((root / name).read_bytes()).hexdigest()
        # minikube/kubectl style for the binary (digest only), helm style for the archive (digest  name).
        line = digest if name == TOOL else f"{digest}  {name}"
        (root / f"{name}.sha256").write_text(f"{line}\n")
        (root / f"{name}.bad.sha256").write_text(f"{'0' * 64}" + ("" if name == TOOL else f"  {name}") + "\n")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server.requests
    server.shutdown()
    server.server_close()


def _tool(base: str, name: str = TOOL, checksum: str = f"{TOOL}.sha256", member: str = "") -> dict:
    return {
        "name": TOOL,
        "version_args": ["--version"],
        "min_version": "1.2.0",
        "version": "1.2.3",
        "url": f"{base}/{name}",
        "checksum_url": f"{base}/{checksum}",
        "archive_member": member,
    }


def _run(tmp_path, tool: dict, path_dir=None):
    bin_dir = tmp_path / "bin"
    scratch = tmp_path / "scratch"
    scratch.mkdir(exist_ok=True)
    env = {"TMPDIR": str(scratch)}
    if path_dir:
        env["PATH"] = f"{path_dir}:{os.environ['PATH']}"
    extra = {"tools_wanted": [tool], "tools_names": [TOOL], "tools_bin_dir": str(bin_dir)}
    run = run_playbook(PLAYBOOK, "dev", extra, env=env, timeout=120)
    return run, bin_dir, scratch


def _reported_tools(run) -> dict:
    for play in run.report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == "Report the tools in use":
                return task["hosts"]["localhost"]["tools_bin"]
    raise AssertionError("the tools role did not finish")


@pytest.mark.parametrize(
    ("name", "member"), [(TOOL, ""), (f"{TOOL}.tar.gz", f"linux-amd64/{TOOL}")], ids=["binary", "archive"]
)
def test_good_checksum_installs_the_release(tmp_path, release_server, name, member):
    base, requests = release_server
    run, bin_dir, scratch = _run(tmp_path, _tool(base, name, f"{name}.sha256", member))

    assert run.rc == 0, run.failure_messages()
    installed = bin_dir / TOOL
    assert installed.read_bytes() == SCRIPT
    assert installed.stat().st_mode & stat.S_IXUSR
    assert _reported_tools(run) == {TOOL: str(installed)}
    assert f"/{name}" in requests and f"/{name}.sha256" in requests
    assert list(scratch.iterdir()) == []  # the download directory is cleaned up

    # Second run: the installed tool fits, nothing is downloaded or changed.
    requests.clear()
    again, _, _ = _run(tmp_path, _tool(base, name, f"{name}.sha256", member))
    assert again.rc == 0 and again.changed() == 0 and requests == []


@pytest.mark.parametrize(
    ("name", "member"), [(TOOL, ""), (f"{TOOL}.tar.gz", f"linux-amd64/{TOOL}")], ids=["binary", "archive"]
)
def test_bad_checksum_fails_and_installs_nothing(tmp_path, release_server, name, member):
    base, _ = release_server
    run, bin_dir, scratch = _run(tmp_path, _tool(base, name, f"{name}.bad.sha256", member))

    assert run.rc != 0
    message = "\n".join(run.failure_messages())
    assert f"{TOOL} 1.2.3 could not be installed" in message
    assert "did not match" in message and "Nothing was installed" in message
    assert not (bin_dir / TOOL).exists()
    assert list(scratch.iterdir()) == []


def test_fitting_tool_on_path_is_used_without_download(tmp_path, release_server):
    base, requests = release_server
    on_path = tmp_path / "path"
    on_path.mkdir()
    (on_path / TOOL).write_bytes(SCRIPT)
    (on_path / TOOL).chmod(0o755)

    run, bin_dir, _ = _run(tmp_path, _tool(base), path_dir=on_path)

    assert run.rc == 0, run.failure_messages()
    assert _reported_tools(run) == {TOOL: str(on_path / TOOL)}
    assert requests == [] and not bin_dir.exists()


def test_too_old_tool_on_path_is_replaced_by_the_pinned_release(tmp_path, release_server):
    base, requests = release_server
    on_path = tmp_path / "path"
    on_path.mkdir()
    (on_path / TOOL).write_bytes(b"#!/bin/sh\necho 'atlasfake v0.9.0'\n")
    (on_path / TOOL).chmod(0o755)

    run, bin_dir, _ = _run(tmp_path, _tool(base), path_dir=on_path)

    assert run.rc == 0, run.failure_messages()
    assert _reported_tools(run) == {TOOL: str(bin_dir / TOOL)}
    assert f"/{TOOL}" in requests
