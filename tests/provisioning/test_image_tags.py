"""Image tags come from content: the same tree gives the same tag anywhere, any source change a new one,
and generated files (bytecode, egg-info) none. Exercises the image_tags role's lookup plugin directly."""

from __future__ import annotations

import importlib.util
import os
import shutil

import pytest
from ansible.errors import AnsibleError

from tests.provisioning.ansible_run import REPO_ROOT

_spec = importlib.util.spec_from_file_location(
    "atlas_source_hash", os.path.join(REPO_ROOT, "roles", "image_tags", "lookup_plugins", "atlas_source_hash.py")
)
plugin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(plugin)


@pytest.fixture
def tree(tmp_path):
    svc = tmp_path / "services"
    (svc / "users" / "users").mkdir(parents=True)
    (svc / "users" / "Dockerfile").write_text("FROM python:3.11-slim\n")
    (svc / "users" / "users" / "app.py").write_text("print('hi')\n")
    (svc / "common").mkdir()
    (svc / "common" / "lib.py").write_text("X = 1\n")
    (svc / "requirements.txt").write_text("flask==3.1.0\n")
    return svc


def _tag(svc) -> str:
    return plugin.source_hash([str(svc / "users"), str(svc / "common"), str(svc / "requirements.txt")])


def test_same_content_same_tag_anywhere(tree, tmp_path):
    copy = tmp_path / "elsewhere" / "services"
    shutil.copytree(tree, copy)
    assert _tag(tree) == _tag(copy)
    assert len(_tag(tree)) == 12


@pytest.mark.parametrize(
    "change",
    [
        lambda s: (s / "users" / "users" / "app.py").write_text("print('bye')\n"),
        lambda s: (s / "users" / "Dockerfile").write_text("FROM python:3.12-slim\n"),
        lambda s: (s / "common" / "lib.py").write_text("X = 2\n"),
        lambda s: (s / "requirements.txt").write_text("flask==3.1.1\n"),
        lambda s: (s / "users" / "users" / "app.py").rename(s / "users" / "users" / "main.py"),
    ],
    ids=["source", "dockerfile", "shared-library", "requirements", "rename"],
)
def test_any_input_change_gives_a_new_tag(tree, change):
    before = _tag(tree)
    change(tree)
    assert _tag(tree) != before


def test_generated_files_do_not_change_the_tag(tree):
    before = _tag(tree)
    (tree / "users" / "users" / "__pycache__").mkdir()
    (tree / "users" / "users" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\0")
    (tree / "users" / "atlas_users.egg-info").mkdir()
    (tree / "users" / "atlas_users.egg-info" / "PKG-INFO").write_text("x")
    assert _tag(tree) == before


def test_missing_source_is_named(tree):
    with pytest.raises(AnsibleError, match=r"services/projects does not exist"):
        plugin.source_hash([str(tree / "projects")])
