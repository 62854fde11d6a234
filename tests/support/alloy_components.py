"""What the Alloy components that atlas-logs.alloy uses accept and export, for a structural check.

Transcribed from grafana/alloy, tag v1.18.1, docs/sources/reference/components/:
discovery/discovery.kubernetes.md, discovery/discovery.relabel.md, loki/loki.source.kubernetes.md,
loki/loki.process.md, loki/loki.write.md (the Arguments, Blocks and Exported fields tables). Only the
arguments and blocks this project uses or is likely to are listed: an unlisted one is reported, so that
whoever adds it reads the upstream table and adds it here. The running Alloy checks the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .alloy_syntax import Block, Reference


@dataclass(frozen=True)
class Spec:
    required: frozenset[str] = frozenset()
    optional: frozenset[str] = frozenset()
    blocks: dict[str, Spec] = field(default_factory=dict)
    exports: frozenset[str] = frozenset()


def _spec(required=(), optional=(), blocks=None, exports=()) -> Spec:
    return Spec(frozenset(required), frozenset(optional), blocks or {}, frozenset(exports))


_RELABEL_RULE = _spec(
    optional=("action", "modulus", "regex", "replacement", "separator", "source_labels", "target_label")
)
_LABEL_MAP = _spec(optional=("values",))
STAGES = {
    "stage.json": _spec(optional=("expressions", "regex", "drop_malformed", "source")),
    "stage.labels": _spec(optional=("values", "source_type")),
    "stage.static_labels": _LABEL_MAP,
    "stage.structured_metadata": _spec(optional=("values", "regex")),
    "stage.label_keep": _LABEL_MAP,
    "stage.label_drop": _LABEL_MAP,
}
_ENDPOINT = _spec(
    required=("url",),
    optional=("batch_size", "batch_wait", "headers", "name", "remote_timeout", "tenant_id", "retry_on_http_429"),
)

COMPONENTS = {
    "discovery.kubernetes": _spec(
        required=("role",),
        optional=("api_server", "kubeconfig_file"),
        blocks={
            "namespaces": _spec(optional=("names", "own_namespace")),
            "selectors": _spec(required=("role",), optional=("field", "label")),
        },
        exports=("targets",),
    ),
    "discovery.relabel": _spec(required=("targets",), blocks={"rule": _RELABEL_RULE}, exports=("output", "rules")),
    "loki.source.kubernetes": _spec(
        required=("targets", "forward_to"), blocks={"clustering": _spec(required=("enabled",))}
    ),
    "loki.process": _spec(required=("forward_to",), blocks=STAGES, exports=("receiver",)),
    "loki.write": _spec(
        optional=("external_labels", "max_streams"), blocks={"endpoint": _ENDPOINT}, exports=("receiver",)
    ),
}


def _check_block(block: Block, spec: Spec, where: str, problems: list[str]) -> None:
    names = set(block.attributes)
    for missing in sorted(spec.required - names):
        problems.append(f"{where}: required argument {missing} missing")
    for unknown in sorted(names - spec.required - spec.optional):
        problems.append(f"{where}: argument {unknown} not in the spec")
    for child in block.blocks:
        child_spec = spec.blocks.get(child.name)
        if child_spec is None:
            problems.append(f"{where}: block {child.name} not in the spec")
        else:
            _check_block(child, child_spec, f"{where} > {child.name}", problems)


def _references(value) -> list[Reference]:
    if isinstance(value, Reference):
        return [value]
    if isinstance(value, list):
        return [r for v in value for r in _references(v)]
    if isinstance(value, dict):
        return [r for v in value.values() for r in _references(v)]
    return []


def _all_references(block: Block) -> list[Reference]:
    refs = [r for v in block.attributes.values() for r in _references(v)]
    return refs + [r for child in block.blocks for r in _all_references(child)]


def problems(components: list[Block]) -> list[str]:
    """Everything in the file that the running Alloy v1.18.1 would refuse, as far as the specs above tell."""
    found: list[str] = []
    declared: dict[tuple[str, str], Block] = {}
    for block in components:
        where = f"{block.name} {block.label!r} (line {block.line})"
        spec = COMPONENTS.get(block.name)
        if spec is None:
            found.append(f"{where}: component not in the spec")
            continue
        if not block.label:
            found.append(f"{where}: a component needs a label")
            continue
        if (block.name, block.label) in declared:
            found.append(f"{where}: declared twice")
        declared[(block.name, block.label)] = block
        _check_block(block, spec, where, found)
    for block in components:
        for ref in _all_references(block):
            if len(ref.path) < 3:
                found.append(f"{block.name} {block.label!r}: {ref} is not a component's export")
                continue
            *name, label, export = ref.path
            target = (".".join(name), label)
            if target not in declared:
                found.append(f"{block.name} {block.label!r}: {ref} names no component")
            elif export not in COMPONENTS[target[0]].exports:
                found.append(f"{block.name} {block.label!r}: {target[0]} exports no {export}")
        # The types the arguments take: list(LogsReceiver) and list(map(string)) (the docs' tables).
        for ref in _references(block.attributes.get("forward_to", [])):
            if ref.path[-1] != "receiver":
                found.append(f"{block.name} {block.label!r}: forward_to takes receivers, not {ref}")
        for ref in _references(block.attributes.get("targets", [])):
            if ref.path[-1] not in ("targets", "output"):
                found.append(f"{block.name} {block.label!r}: targets takes targets, not {ref}")
    return found
