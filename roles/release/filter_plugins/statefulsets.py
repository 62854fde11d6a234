"""Changes to a database's StatefulSet that Kubernetes refuses, found before `helm upgrade` makes them.

The apiserver forbids updating a StatefulSet's spec except replicas, ordinals, template, updateStrategy,
revisionHistoryLimit, persistentVolumeClaimRetentionPolicy and minReadySeconds (kubernetes/kubernetes,
pkg/apis/apps/validation/validation.go, ValidateStatefulSetUpdate). `helm upgrade --atomic` then fails and
rolls back after its timeout (kubernetes/kubernetes#68737). For the settings users change — a database's
volume size, storage class, access modes, and persistence on/off (the full <-> ephemeral profiles) — this
names the setting and the way through (docs/troubleshooting.md, case 16).
"""

from __future__ import annotations

import re

import yaml

# Kubernetes quantities (resource.Quantity) for comparing sizes written differently (1Gi == 1024Mi).
_SUFFIXES = {
    "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
    "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "m": 10**-3, "": 1,
}  # fmt: skip
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$")
# Spec fields the apiserver lets an update change; every other one is compared.
_MUTABLE = {
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
}
GUIDE = "docs/troubleshooting.md, case 16"


def _bytes(quantity) -> float | None:
    match = _QUANTITY.match(str(quantity or ""))
    return float(match.group(1)) * _SUFFIXES[match.group(2) or ""] if match else None


def _claims(sts: dict) -> dict[str, dict]:
    return {
        c["metadata"]["name"]: c.get("spec") or {} for c in (sts.get("spec") or {}).get("volumeClaimTemplates") or []
    }


def _service(sts: dict) -> str:
    component = ((sts.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component", "")
    return component.removesuffix("-postgresql") or sts["metadata"]["name"]


def statefulset_changes(live: list[dict], rendered: str) -> list[str]:
    """One problem per database whose live StatefulSet the rendered one could not replace in place."""
    wanted = {
        d["metadata"]["name"]: d
        for d in yaml.safe_load_all(rendered or "")
        if isinstance(d, dict) and d.get("kind") == "StatefulSet"
    }
    problems = []
    for current in live or []:
        name = current["metadata"]["name"]
        if name not in wanted:
            continue
        new, svc = wanted[name], _service(current)
        found = []
        old_claims, new_claims = _claims(current), _claims(new)
        if old_claims and not new_claims:
            found.append(f"{svc}.postgresql.persistence.enabled: the volume claims would go (persistent -> ephemeral)")
        elif new_claims and not old_claims:
            found.append(
                f"{svc}.postgresql.persistence.enabled: volume claims would be added (ephemeral -> persistent)"
            )
        for claim in sorted(set(old_claims) & set(new_claims)):
            old, want = old_claims[claim], new_claims[claim]
            old_size = ((old.get("resources") or {}).get("requests") or {}).get("storage")
            new_size = ((want.get("resources") or {}).get("requests") or {}).get("storage")
            if _bytes(old_size) != _bytes(new_size):
                found.append(f"{svc}.postgresql.persistence.size: {old_size} -> {new_size}")
            if (old.get("storageClassName") or "") != (want.get("storageClassName") or ""):
                found.append(
                    f"{svc}.postgresql.persistence.storageClass: {old.get('storageClassName') or '(default)'} -> "
                    f"{want.get('storageClassName') or '(default)'}"
                )
            if sorted(old.get("accessModes") or []) != sorted(want.get("accessModes") or []):
                found.append(
                    f"{svc}.postgresql.persistence.accessModes: {old.get('accessModes')} -> {want.get('accessModes')}"
                )
        # Anything else the chart itself changed (selector, serviceName, ...): not a setting, but the same refusal.
        for field in sorted(set(current.get("spec") or {}) | set(new.get("spec") or {})):
            if field in _MUTABLE or field == "volumeClaimTemplates":
                continue
            before, after = (current.get("spec") or {}).get(field), (new.get("spec") or {}).get(field)
            if after is not None and before != after:
                found.append(f"spec.{field} (a chart change): {before} -> {after}")
        if found:
            problems.append(
                f"{svc}: the StatefulSet {name} cannot be changed in place ({'; '.join(found)}); Kubernetes refuses "
                f"it, so helm upgrade would fail and roll back. Nothing was changed. See {GUIDE}: resize through "
                "volume expansion, switch persistence through backup -> reinstall -> restore"
            )
    return problems


class FilterModule:
    def filters(self):
        return {"atlas_statefulset_changes": statefulset_changes}
