"""What an Alloy log pipeline (discovery.kubernetes -> discovery.relabel -> loki.source.kubernetes ->
loki.process -> loki.write) makes of one container's log line: its stream labels and structured metadata.

A model of the parts atlas-logs.alloy uses, read in grafana/alloy, tag v1.18.1:
  - discovery.kubernetes (role pod) target labels: docs/sources/reference/components/discovery/
    discovery.kubernetes.md; label names sanitised as Prometheus' discovery does ([^a-zA-Z0-9_] -> _).
  - discovery.relabel's default action replace (regex "(.*)" anchored, replacement "$1", separator ";",
    an empty result deletes the target label): Prometheus' model/relabel, which Alloy uses.
  - loki.source.kubernetes: internal/component/loki/source/kubernetes/kubetail/target.go
    (PrepareLabels adds job=<component id> when absent; labels starting "__" are dropped).
  - loki.process stages: internal/component/loki/process/stages/{pipeline,json,labels,static_labels,
    structured_metadata,label_keep,label_drop,util}.go (extracted starts as a copy of the labels; a line
    that is not JSON passes unchanged; structured_metadata moves a label it names out of the labels).
  - loki.write external_labels: docs/sources/reference/components/loki/loki.write.md.
Anything else (another relabel action, another stage, a JMESPath expression beyond a plain key) raises
NotModelled instead of being guessed at. The real pipeline runs only in a cluster.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from .alloy_syntax import Block, Reference


class NotModelled(NotImplementedError):
    pass


@dataclass
class Entry:
    labels: dict[str, str]
    structured_metadata: dict[str, str] = field(default_factory=dict)


def sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def pod_targets(namespace: str, pod_name: str, pod_uid: str, pod_labels: dict[str, str], pod_spec: dict) -> list:
    """discovery.kubernetes' targets for one pod: one per container (init containers included). Pods'
    containers with several ports yield one target per port in Alloy; their labels after relabelling are
    the same, and loki.source.kubernetes tails each distinct target once, so one per container here."""
    common = {
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_pod_name": pod_name,
        "__meta_kubernetes_pod_uid": pod_uid,
        **{f"__meta_kubernetes_pod_label_{sanitize(k)}": v for k, v in pod_labels.items()},
        **{f"__meta_kubernetes_pod_labelpresent_{sanitize(k)}": "true" for k in pod_labels},
    }
    targets = []
    for kind, init in (("initContainers", "true"), ("containers", "false")):
        for container in pod_spec.get(kind, []):
            targets.append(
                {
                    **common,
                    "__meta_kubernetes_pod_container_name": container["name"],
                    "__meta_kubernetes_pod_container_init": init,
                }
            )
    return targets


def _string(value: Any) -> str | None:
    """util.go getString: numbers without trailing zeros, bools lowercase, anything else refused."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # strconv.FormatFloat(f, 'f', -1, 64): shortest, never an exponent
        return str(int(value)) if value.is_integer() else format(Decimal(repr(value)), "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return value
    return None


def _json_value(value: Any) -> Any:
    """json.go simplifyType: scalars kept, objects and lists back to their JSON text."""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)  # Go decodes every JSON number as float64
    return value


class Pipeline:
    def __init__(self, components: list[Block]) -> None:
        self.components = {(b.name, b.label): b for b in components}
        sources = [b for b in components if b.name == "loki.source.kubernetes"]
        if len(sources) != 1:
            raise NotModelled(f"one loki.source.kubernetes expected, found {len(sources)}")
        self.source = sources[0]
        self.relabel, self.discovery = self._upstream(self.source)
        self.process = self._downstream(self.source, "loki.process")
        self.write = self._downstream(self.process, "loki.write")

    def _component(self, ref: Reference) -> Block:
        return self.components[(".".join(ref.path[:-2]), ref.path[-2])]

    def _upstream(self, source: Block) -> tuple[Block, Block]:
        relabel = self._component(source.attributes["targets"])
        if relabel.name != "discovery.relabel":
            raise NotModelled(f"targets from {relabel.name}")
        discovery = self._component(relabel.attributes["targets"])
        if discovery.name != "discovery.kubernetes" or discovery.attributes.get("role") != "pod":
            raise NotModelled("discovery other than discovery.kubernetes role pod")
        return relabel, discovery

    def _downstream(self, block: Block, name: str) -> Block:
        receivers = block.attributes["forward_to"]
        if len(receivers) != 1 or self._component(receivers[0]).name != name:
            raise NotModelled(f"{block.name} {block.label!r} should forward to one {name}")
        return self._component(receivers[0])

    # -- discovery ---------------------------------------------------------------------------
    def discovers(self, target: dict[str, str]) -> bool:
        """Whether discovery.kubernetes lists this pod: its namespaces block and equality label selectors."""
        for namespaces in self.discovery.children("namespaces"):
            if target["__meta_kubernetes_namespace"] not in namespaces.attributes.get("names", []):
                return False
        for selector in self.discovery.children("selectors"):
            if selector.attributes.get("field"):
                raise NotModelled("field selectors")
            for term in filter(None, selector.attributes.get("label", "").split(",")):
                key, sep, value = term.partition("=")
                if not sep or key.endswith("!") or value.startswith("="):
                    raise NotModelled(f"label selector {term!r}: only key=value is modelled")
                if target.get(f"__meta_kubernetes_pod_label_{sanitize(key.strip())}") != value.strip():
                    return False
        return True

    def relabelled(self, target: dict[str, str]) -> dict[str, str] | None:
        labels = dict(target)
        for rule in self.relabel.children("rule"):
            attrs = rule.attributes
            if attrs.get("action", "replace") != "replace":
                raise NotModelled(f"relabel action {attrs['action']}")
            value = attrs.get("separator", ";").join(labels.get(s, "") for s in attrs.get("source_labels", []))
            match = re.fullmatch(attrs.get("regex", "(.*)"), value)
            if match is None:
                continue
            result = match.expand(re.sub(r"\$\{?(\d+)\}?", r"\\g<\1>", attrs.get("replacement", "$1")))
            if result:
                labels[attrs["target_label"]] = result
            else:
                labels.pop(attrs["target_label"], None)
        return labels

    def source_labels(self, target: dict[str, str]) -> dict[str, str]:
        """loki.source.kubernetes' labels for a target's lines (PrepareLabels, then public labels only)."""
        labels = self.relabelled(target)
        labels.setdefault("job", f"loki.source.kubernetes.{self.source.label}")
        return {k: v for k, v in labels.items() if not k.startswith("__")}

    # -- loki.process ------------------------------------------------------------------------
    def entry(self, target: dict[str, str], line: str) -> Entry:
        entry = Entry(self.source_labels(target))
        extracted: dict[str, Any] = dict(entry.labels)
        for stage in self.process.blocks:
            run = getattr(self, "_" + stage.name.replace(".", "_"), None)
            if run is None:
                raise NotModelled(stage.name)
            run(stage.attributes, entry, extracted, line)
        for key, value in self.write.attributes.get("external_labels", {}).items():
            entry.labels[key] = value
        return entry

    def _stage_json(self, attrs, entry, extracted, line) -> None:
        if "source" in attrs or "regex" in attrs:
            raise NotModelled("stage.json source/regex")
        try:
            data = json.loads(line)
        except ValueError:
            return  # malformed: the line goes on unchanged (drop_malformed would drop it)
        if not isinstance(data, dict):
            return
        for name, expr in attrs.get("expressions", {}).items():
            key = expr or name
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise NotModelled(f"JMESPath expression {expr!r}")
            extracted[name] = _json_value(data.get(key))

    def _stage_labels(self, attrs, entry, extracted, line) -> None:
        if attrs.get("source_type", "extracted") != "extracted":
            raise NotModelled("stage.labels source_type")
        for name, src in attrs.get("values", {}).items():
            value = _string(extracted.get(src or name)) if (src or name) in extracted else None
            if value is not None:
                entry.labels[name] = value

    def _stage_static_labels(self, attrs, entry, extracted, line) -> None:
        entry.labels.update(attrs.get("values", {}))

    def _stage_structured_metadata(self, attrs, entry, extracted, line) -> None:
        if attrs.get("regex"):
            raise NotModelled("stage.structured_metadata regex")
        values = {name: src or name for name, src in attrs.get("values", {}).items()}
        for name, src in values.items():
            value = _string(extracted.get(src)) if src in extracted else None
            if value is not None:
                entry.structured_metadata[name] = value
        for name, src in values.items():
            if src in entry.labels:
                entry.structured_metadata[name] = entry.labels.pop(src)

    def _stage_label_keep(self, attrs, entry, extracted, line) -> None:
        keep = set(attrs.get("values", []))
        entry.labels = {k: v for k, v in entry.labels.items() if k in keep}

    def _stage_label_drop(self, attrs, entry, extracted, line) -> None:
        for name in attrs.get("values", []):
            entry.labels.pop(name, None)


def label_names(components: list[Block]) -> set[str]:
    """Every stream label name the config can send, read off the config: the relabel rules' targets
    (discovery's own labels all start with __ and are dropped) and job, then each stage in order."""
    pipeline = Pipeline(components)
    names = {r.attributes["target_label"] for r in pipeline.relabel.children("rule")} | {"job"}
    names = {n for n in names if not n.startswith("__")}
    for stage in pipeline.process.blocks:
        values = stage.attributes.get("values", {})
        if stage.name in ("stage.labels", "stage.static_labels"):
            names |= set(values)
        elif stage.name == "stage.structured_metadata":
            names -= {src or name for name, src in values.items()}
        elif stage.name == "stage.label_keep":
            names &= set(values)
        elif stage.name == "stage.label_drop":
            names -= set(values)
        elif stage.name != "stage.json":
            raise NotModelled(stage.name)
    return names | set(pipeline.write.attributes.get("external_labels", {}))
