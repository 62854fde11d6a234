"""lookup('atlas_source_hash', path, ...): a short, stable content hash of files and directory trees.

Used for image tags: the same source gives the same tag on every machine (relative paths and contents
only; no timestamps, no ordering of the file system), and any change to a file gives a new tag.
"""

from __future__ import annotations

import hashlib
import os

from ansible.errors import AnsibleError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = """
name: atlas_source_hash
short_description: sha256 (first 12 hex digits by default) over the files under the given paths
options:
  _terms:
    description: Files or directories; directories are walked recursively.
    required: true
  length:
    description: Number of hex digits returned.
    type: int
    default: 12
"""

# Generated files that do not go into an image and must not change the tag.
_IGNORED_DIRS = {"__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "build", "dist"}
_IGNORED_SUFFIXES = (".pyc", ".pyo", ".egg-info")


def _files(path: str):
    if os.path.isfile(path):
        yield path
        return
    for root, dirs, files in os.walk(path):
        dirs[:] = sorted(d for d in dirs if d not in _IGNORED_DIRS and not d.endswith(_IGNORED_SUFFIXES))
        for name in sorted(files):
            if not name.endswith(_IGNORED_SUFFIXES):
                yield os.path.join(root, name)


def source_hash(paths: list[str], length: int = 12) -> str:
    digest = hashlib.sha256()
    for path in paths:
        if not os.path.exists(path):
            raise AnsibleError(f"atlas_source_hash: {path} does not exist (it is part of an image's source)")
        base = os.path.dirname(os.path.normpath(path))
        for file in _files(path):
            # The relative name is hashed too, so a rename is a change.
            digest.update(os.path.relpath(file, base).encode() + b"\0")
            with open(file, "rb") as fh:
                digest.update(hashlib.sha256(fh.read()).digest())
    return digest.hexdigest()[:length]


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        return [source_hash(list(terms), self.get_option("length"))]
