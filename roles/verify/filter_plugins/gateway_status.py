"""What the gateway's controller said about the release's routes and policies, from their status.

Gateway API v1.6 (gateway.networking.k8s.io/v1 HTTPRoute): status.parents[], one per Gateway (listener) the route
names, each with conditions Accepted (the Gateway took the route) and ResolvedRefs (its backends exist). Envoy
Gateway v1.9 policies (gateway.envoyproxy.io/v1alpha1 SecurityPolicy, BackendTrafficPolicy): status.ancestors[],
one per Gateway the policy reaches through its target, each with condition Accepted. (The Gateway API's
RouteParentStatus and Envoy Gateway's PolicyAncestorStatus; conditions as metav1.Condition: type, status, reason,
message.) An object without them has not been seen by a controller yet.
"""

from __future__ import annotations

_WANTED = {"HTTPRoute": ("parents", ("Accepted", "ResolvedRefs"))}
_POLICY = ("ancestors", ("Accepted",))


def _parent_name(entry: dict) -> str:
    ref = entry.get("parentRef") or entry.get("ancestorRef") or {}
    name = ref.get("name", "?")
    return f"{ref['namespace']}/{name}" if ref.get("namespace") else name


def atlas_gateway_problems(objects: list[dict]) -> list[str]:
    """'<Kind>/<name>: ...' for each object some gateway has not accepted (every condition wanted True)."""
    problems = []
    for obj in objects or []:
        kind, name = obj.get("kind", "?"), (obj.get("metadata") or {}).get("name", "?")
        field, conditions = _WANTED.get(kind, _POLICY)
        entries = (obj.get("status") or {}).get(field) or []
        if not entries:
            problems.append(f"{kind}/{name}: no gateway has taken it up yet (no status.{field})")
            continue
        for entry in entries:
            found = {c.get("type"): c for c in entry.get("conditions") or []}
            for wanted in conditions:
                condition = found.get(wanted)
                if condition is None or condition.get("status") != "True":
                    why = (
                        f"{condition.get('status')} ({condition.get('reason', '')}: {condition.get('message', '')})"
                        if condition
                        else "not reported"
                    )
                    problems.append(f"{kind}/{name}: {wanted} is {why} for {_parent_name(entry)}")
    return problems


class FilterModule:
    def filters(self):
        return {"atlas_gateway_problems": atlas_gateway_problems}
