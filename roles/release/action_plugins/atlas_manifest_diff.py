"""atlas_manifest_diff: the change a deploy would make, as the live release's manifest against the one the
settings render, shown by Ansible's --diff (no helm-diff plugin needed).

Both sides are the chart's objects without hooks (the `helm test` pods are hooks; `helm get manifest` leaves
them out too), one YAML document per object, sorted by kind and name, so only real changes show.
"""

from __future__ import annotations

import yaml
from ansible.plugins.action import ActionBase


def _objects(docs) -> list[dict]:
    found = [d for d in docs or [] if isinstance(d, dict) and d.get("kind")]
    kept = [d for d in found if "helm.sh/hook" not in ((d.get("metadata") or {}).get("annotations") or {})]
    return sorted(kept, key=lambda d: (d["kind"], (d.get("metadata") or {}).get("name", "")))


def _text(objects: list[dict]) -> str:
    return "".join("---\n" + yaml.safe_dump(o, sort_keys=True, default_flow_style=False) for o in objects)


class ActionModule(ActionBase):
    _supports_check_mode = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        args = self._task.args
        live = _text(_objects(args.get("live") or []))
        rendered = _text(_objects(yaml.safe_load_all(args.get("rendered") or "")))
        result["changed"] = live != rendered
        result["diff"] = {
            "before": live,
            "after": rendered,
            "before_header": args.get("before_header", "the live release"),
            "after_header": args.get("after_header", "rendered from the settings"),
        }
        return result
