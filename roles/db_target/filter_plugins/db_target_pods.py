"""atlas_ready_pods for db_target: the one definition, roles/verify/filter_plugins/pods.py, loaded from there.

Ansible puts a role's filter_plugins on the search path only when that role is loaded, and db_target runs
without roles/verify (backup.yml never runs it). Rather than a copy, this module loads verify's file and offers
the same function under the same name, so both roles pick Ready pods without a deletionTimestamp by one rule.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

_SOURCE = Path(__file__).resolve().parents[2] / "verify" / "filter_plugins" / "pods.py"


def _load():
    spec = importlib.util.spec_from_file_location("atlas_verify_pods", _SOURCE)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {_SOURCE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_pods = _load()


class FilterModule:
    def filters(self):
        return {"atlas_ready_pods": _pods.atlas_ready_pods}
