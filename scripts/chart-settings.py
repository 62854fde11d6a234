#!/usr/bin/env python3
"""The chart's settings, generated from the services' own declarations (one source of truth).

Each service package lists the settings blocks it reads in ``SETTINGS`` (services/<service>/<service>/
__init__.py): ``atlas_common.config.Settings`` (chart block ``config``) for every service, and its own
blocks (projects: ``UsersServiceSettings``, ``usersService``). Each field there declares its environment
variable, chart key (or why it is environment only), type, bounds, default and one-line doc. A block with
no chart key at all (``AuthSettings``: every one of its variables is wired by the chart itself) has no
block in the chart: no definition, no values, no ConfigMap lines; its variables are still in the table of
docs/interfaces.md (and named in values.yaml's comments). From them:

  charts/atlas/values.schema.json        definitions.<block>: type, minimum, maximum, enum, description, no
                                         unknown keys; each service: its blocks required, other blocks refused
  charts/atlas/values.yaml               each service's blocks with their `## @param` lines, between the
                                         GENERATED markers (hence the README's parameters table)
  charts/atlas/templates/_settings.tpl   chart key -> environment variable (the ConfigMap lines), and the
                                         checks across keys (a setting that `follows` another)
  docs/interfaces.md                     the environment variables table, between the GENERATED markers

  .venv/bin/python scripts/chart-settings.py           rewrite them (`make chart-docs`, before chart-docs.sh)
  .venv/bin/python scripts/chart-settings.py --check   exit 1 with a diff when one is out of date
  --chart-dir DIR / --interfaces FILE                   another copy (the tests check modified copies)
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICES_DIR = os.path.join(ROOT, "services")
# The declarations are read from this checkout, installed or not.
sys.path[:0] = [p for p in sorted(os.path.join(SERVICES_DIR, n) for n in os.listdir(SERVICES_DIR)) if os.path.isdir(p)]

from atlas_common.config import Declared, SettingsBlock, number  # noqa: E402 - after the path above

GENERATOR = "scripts/chart-settings.py"
BEGIN_VALUES = "## --- BEGIN GENERATED settings of {service}"
END_VALUES = "## --- END GENERATED settings ---"
BEGIN_DOCS = "<!-- BEGIN GENERATED environment table"
END_DOCS = "<!-- END GENERATED environment table -->"
YAML_LINE_LENGTH = 160  # .yamllint


# -- what the services declare --------------------------------------------------------------------


@dataclass(frozen=True)
class Service:
    name: str
    blocks: tuple[type[SettingsBlock], ...]


def services() -> list[Service]:
    """Every service package (services/<name>/<name>/__init__.py with SETTINGS), by name."""
    found = []
    for name in sorted(os.listdir(SERVICES_DIR)):
        if not os.path.isfile(os.path.join(SERVICES_DIR, name, name, "__init__.py")):
            continue  # services/common holds atlas_common: a library, not a service
        package = importlib.import_module(name)
        blocks = getattr(package, "SETTINGS", None)
        if not blocks or not all(isinstance(b, type) and issubclass(b, SettingsBlock) for b in blocks):
            raise SystemExit(f"[chart-settings] {name}: its package must list its settings blocks in SETTINGS")
        found.append(Service(name, tuple(blocks)))
    return found


def all_blocks(found: Iterable[Service]) -> list[type[SettingsBlock]]:
    blocks: list[type[SettingsBlock]] = []
    for service in found:
        blocks += [b for b in service.blocks if b not in blocks]
    return blocks


def chart_fields(block: type[SettingsBlock]) -> list[Declared]:
    return [d for d in block.declared() if d.chart is not None]


def charted(blocks: Iterable[type[SettingsBlock]]) -> list[type[SettingsBlock]]:
    """The blocks that are chart blocks: those with at least one chart key."""
    return [b for b in blocks if chart_fields(b)]


def _by_name(block: type[SettingsBlock]) -> dict[str, Declared]:
    return {d.name: d for d in block.declared()}


def _follows_note(block: type[SettingsBlock], d: Declared) -> str:
    other = _by_name(block)[d.follows]
    return f"at least {block.chart_block}.{other.chart}; null: = {block.chart_block}.{other.chart}"


def param_text(block: type[SettingsBlock], d: Declared) -> str:
    """The one-line description of a chart value: variable, doc, what is allowed."""
    allowed = d.range_text()
    if d.follows:
        allowed += f", {_follows_note(block, d)}"
    return f"{d.env}: {d.doc}; {allowed}"


# -- values.schema.json ---------------------------------------------------------------------------


def block_schema(block: type[SettingsBlock]) -> dict:
    properties = {}
    for d in chart_fields(block):
        kind = "string" if d.kind == "enum" else d.kind
        prop: dict = {"type": [kind, "null"] if d.nullable else kind}
        if d.enum:
            prop["enum"] = list(d.enum)
        if d.minimum is not None:
            prop["minimum"] = d.minimum
        if d.maximum is not None:
            prop["maximum"] = d.maximum
        prop["description"] = param_text(block, d)
        properties[d.chart] = prop
    return {
        "type": "object",
        "additionalProperties": False,
        "description": f"generated by {GENERATOR} from {block.__module__}.{block.__name__}",
        "properties": properties,
        "required": [d.chart for d in chart_fields(block) if not d.nullable],
    }


def schema_text(current: str, found: list[Service]) -> str:
    schema = json.loads(current)
    definitions = schema["definitions"]
    blocks = charted(all_blocks(found))
    names = [b.chart_block for b in blocks]
    service_def = definitions["atlasService"]
    for block in blocks:
        definitions[block.chart_block] = block_schema(block)
        service_def["properties"][block.chart_block] = {"$ref": f"#/definitions/{block.chart_block}"}
    service_def["required"] = [k for k in service_def["required"] if k not in names]
    for service in found:
        own = [b.chart_block for b in charted(service.blocks)]
        entry: dict = {"allOf": [{"$ref": "#/definitions/atlasService"}], "required": own}
        refused = [name for name in names if name not in own]
        if refused:
            entry["properties"] = dict.fromkeys(refused, False)
        entry["description"] = f"the {service.name} service; its settings blocks: {', '.join(own)}" + (
            f" ({', '.join(refused)}: not this service's)" if refused else ""
        )
        schema["properties"][service.name] = entry
    return json.dumps(schema, indent=2) + "\n"


# -- values.yaml ----------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_YAML_WORDS = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"}


def yaml_scalar(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return number(value)
    if _PLAIN.match(value) and value.lower() not in _YAML_WORDS:
        return value
    return json.dumps(value)


def values_region(service: Service, indent: str) -> str:
    lines = [
        f"{BEGIN_VALUES.format(service=service.name)}: {GENERATOR} from the service's declared settings"
        " (edit those, then make chart-docs) ---"
    ]
    for block in service.blocks:
        key = f"{service.name}.{block.chart_block}"
        lines += [f"## @param {key}.{d.chart} {param_text(block, d)}" for d in chart_fields(block)]
        lines += [f"## Not a chart value: {d.env} ({d.env_only})" for d in block.declared() if d.chart is None]
        if chart_fields(block):  # a block without a chart key has no block in the values
            lines.append(f"{block.chart_block}:")
            lines += [f"  {d.chart}: {yaml_scalar(d.default)}" for d in chart_fields(block)]
    lines.append(END_VALUES)
    long = [line for line in lines if len(indent + line) > YAML_LINE_LENGTH]
    if long:  # readme-generator wants each `## @param` on one line; yamllint wants lines this short
        raise SystemExit(f"[chart-settings] shorten the doc of: {long}: longer than {YAML_LINE_LENGTH} characters")
    return "".join(f"{indent}{line}\n" for line in lines)


def values_text(current: str, found: list[Service]) -> str:
    text = current
    for service in found:
        begin, end = re.escape(BEGIN_VALUES.format(service=service.name)), re.escape(END_VALUES)
        pattern = re.compile(rf"^(?P<indent> *){begin}\b.*?^(?P=indent){end}\n", re.MULTILINE | re.DOTALL)
        match = pattern.search(text)
        if match is None:
            raise SystemExit(
                f"[chart-settings] values.yaml has no generated region for {service.name}: put the lines\n"
                f"  {BEGIN_VALUES.format(service=service.name)} ---\n  {END_VALUES}\n"
                f"inside its `{service.name}:` block"
            )
        text = text[: match.start()] + values_region(service, match.group("indent")) + text[match.end() :]
    return text


# -- templates/_settings.tpl ----------------------------------------------------------------------


def _when(found: list[Service], block: type[SettingsBlock]) -> str:
    having = " ".join(json.dumps(s.name) for s in found if block in s.blocks)
    return f"{{{{- if has .name (list {having}) }}}}"


def _value(d: Declared) -> str:
    if d.kind == "integer":
        # Helm reads numbers as float64: 67108864 would print as 6.7108864e+07, which the service refuses.
        return f"$v.{d.chart} | int64 | quote"
    return f"$v.{d.chart} | quote"


def template_text(found: list[Service]) -> str:
    blocks = charted(all_blocks(found))
    sources = ", ".join(sorted({f"{b.__module__}.{b.__name__}" for b in blocks}))
    out = [
        "{{/*",
        f"GENERATED by {GENERATOR} from the services' declared settings, listed per service in its",
        f"package's SETTINGS ({sources}).",
        "Do not edit: change the declaration, then `make chart-docs`; tests/chart/test_settings_generated.py",
        "fails while this file is stale.",
        "*/}}",
        "",
        "{{/*",
        "The ConfigMap lines of one service's settings blocks: each chart key becomes its environment variable.",
        "A key that is null (or left out) is left out here too, so that the service applies its own default",
        "(poolSize null: as many connections as threads). Args: name, svc.",
        "*/}}",
        '{{- define "atlas.settings.env" -}}',
    ]
    for block in blocks:
        out += [_when(found, block), f"{{{{- $v := .svc.{block.chart_block} }}}}"]
        for d in chart_fields(block):
            line = f"{d.env}: {{{{ {_value(d)} }}}}"
            if d.nullable:
                out += [f'{{{{- if not (kindIs "invalid" $v.{d.chart}) }}}}', line, "{{- end }}"]
            else:
                out.append(line)
        out.append("{{- end }}")
    out += [
        "{{- end -}}",
        "",
        "{{/* The checks across one service's settings that the schema cannot express; prints each failure, one per"
        " line (atlas.validate reports them all). Args: name, svc. */}}",
        '{{- define "atlas.settings.validate" -}}',
    ]
    for block in blocks:
        linked = [d for d in chart_fields(block) if d.follows]
        if not linked:
            continue
        out += [_when(found, block), f"{{{{- $v := .svc.{block.chart_block} }}}}"]
        for d in linked:
            other = _by_name(block)[d.follows]
            own_key, other_key = f"{block.chart_block}.{d.chart}", f"{block.chart_block}.{other.chart}"
            message = (
                f"%s.{own_key} (%d) must be at least %s.{other_key} (%d): {d.because}; "
                f"leave %s.{own_key} unset (null) to follow %s.{other_key}"
            )
            own, floor = f"(int64 $v.{d.chart})", f"(int64 $v.{other.chart})"
            out += [
                f'{{{{- if and (not (kindIs "invalid" $v.{d.chart})) (lt {own} {floor}) }}}}',
                f"{{{{- printf {json.dumps(message + chr(10))} .name {own} .name {floor} .name .name }}}}",
                "{{- end }}",
            ]
        out.append("{{- end }}")
    out.append("{{- end -}}")
    return "\n".join(out) + "\n"


# -- docs/interfaces.md ---------------------------------------------------------------------------


def _code(text: str) -> str:
    return f"`{text}`"


def docs_table(found: list[Service]) -> str:
    rows = [
        "| variable | chart value (under `<service>.`) | default | allowed | meaning |",
        "|---|---|---|---|---|",
        "| `PGHOST`, `PGPORT`, `PGDATABASE`, `PGUSER`, `PGPASSWORD` (and any other libpq variable) | none: the "
        "chart sets them from `postgresql` or `externalDatabase` | libpq's | | the service's own database |",
    ]
    every = [s.name for s in found]
    for block in all_blocks(found):
        having = [s.name for s in found if block in s.blocks]
        only = "" if having == every else f" ({', '.join(having)} only)"
        names = _by_name(block)
        for d in block.declared():
            chart = _code(f"{block.chart_block}.{d.chart}") if d.chart else f"none: {d.env_only}"
            if d.follows:
                default = f"= {_code(names[d.follows].env)}"
                allowed = f"{d.range_text()}, at least {_code(names[d.follows].env)}"
            else:
                shown = number(d.default) if d.kind == "number" else d.default
                default = "unset" if d.default is None else _code(shown)
                allowed = d.range_text()
            rows.append(f"| {_code(d.env)}{only} | {chart} | {default} | {allowed} | {d.doc} |")
    return "\n".join(rows) + "\n"


def interfaces_text(current: str, found: list[Service]) -> str:
    pattern = re.compile(rf"^{re.escape(BEGIN_DOCS)}.*?-->\n.*?^{re.escape(END_DOCS)}\n", re.MULTILINE | re.DOTALL)
    match = pattern.search(current)
    if match is None:
        raise SystemExit(f"[chart-settings] docs/interfaces.md has no `{BEGIN_DOCS} ... -->` ... `{END_DOCS}` region")
    region = (
        f"{BEGIN_DOCS}: {GENERATOR} from the services' declared settings; edit those, then make chart-docs -->\n"
        f"{docs_table(found)}{END_DOCS}\n"
    )
    return current[: match.start()] + region + current[match.end() :]


# -- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 when a generated file is out of date")
    parser.add_argument("--chart-dir", default=os.path.join(ROOT, "charts", "atlas"))
    parser.add_argument("--interfaces", default=os.path.join(ROOT, "docs", "interfaces.md"))
    args = parser.parse_args(argv)

    found = services()

    def read(path: str) -> str:
        with open(path, encoding="utf-8") as f:
            return f.read()

    schema_path = os.path.join(args.chart_dir, "values.schema.json")
    values_path = os.path.join(args.chart_dir, "values.yaml")
    template_path = os.path.join(args.chart_dir, "templates", "_settings.tpl")
    wanted = {
        schema_path: schema_text(read(schema_path), found),
        values_path: values_text(read(values_path), found),
        template_path: template_text(found),
        args.interfaces: interfaces_text(read(args.interfaces), found),
    }
    stale = []
    for path, text in wanted.items():
        current = read(path) if os.path.exists(path) else ""
        if current == text:
            continue
        stale.append(os.path.relpath(path, ROOT))
        if args.check:
            sys.stdout.writelines(
                difflib.unified_diff(current.splitlines(True), text.splitlines(True), path, f"{path} (generated)")
            )
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if args.check and stale:
        print(f"[chart-settings] out of date: {', '.join(stale)}: run make chart-docs", file=sys.stderr)
        return 1
    verb = "up to date" if args.check or not stale else f"rewrote {', '.join(stale)}"
    print(f"[chart-settings] {verb}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
