"""A parser for the part of Alloy's configuration syntax that roles/observability's Alloy files use.

No Alloy binary or parser is installable here (none on PyPI, npm or Debian 12), so the tests parse the
file with this instead; the real parse (``alloy fmt``, the running Alloy) happens only in a cluster.

Reproduced from grafana/alloy, tag v1.18.1:
  - syntax/parser/internal.go: File = Body; Body = [ Statement { terminator Statement } ];
    Statement = Attribute | Block; Attribute = identifier "=" Expression;
    Block = BlockName "{" Body "}"; BlockName = identifier { "." identifier } [ string ].
  - syntax/scanner/scanner.go: a newline after an identifier, a literal or a closing ) ] } ends the
    statement (as in Go), so a block's "{" must be on its name's line and a list or object element
    followed by a newline needs its comma; // and /* */ comments.
  - docs/sources/get-started/syntax.md: strings are double-quoted with Go's escapes, or backticked raw.
Expressions are limited to what the files use: strings, numbers, bools, null, lists, objects and
references (a.b.c); anything else (operators, calls, indexing) is refused, not guessed at.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any


class AlloySyntaxError(ValueError):
    pass


@dataclass(frozen=True)
class Reference:
    """A reference to another component's export, e.g. discovery.relabel.pods.output."""

    path: tuple[str, ...]

    def __str__(self) -> str:
        return ".".join(self.path)


@dataclass
class Block:
    name: str  # dotted, e.g. "loki.process" or "stage.json"
    label: str | None
    attributes: dict[str, Any] = field(default_factory=dict)
    blocks: list[Block] = field(default_factory=list)
    line: int = 0

    def children(self, name: str) -> list[Block]:
        return [b for b in self.blocks if b.name == name]


_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<newline>\n)
  | (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<raw>`[^`]*`)
  | (?P<number>[0-9]+(?:\.[0-9]+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<punct>[{}\[\]=,.])
""",
    re.VERBOSE | re.DOTALL,
)
# Tokens after which a newline ends the statement (scanner.go's insertTerminator).
_ENDS_STATEMENT = {"ident", "string", "raw", "number", "}", "]", ")"}


@dataclass
class _Tok:
    kind: str  # ident, string, number, newline, eof, or the punctuation itself
    text: str
    line: int


def _tokens(src: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos, line = 0, 1
    while pos < len(src):
        m = _TOKEN.match(src, pos)
        if m is None:
            raise AlloySyntaxError(f"line {line}: unexpected character {src[pos]!r}")
        kind, text = m.lastgroup, m.group()
        if kind == "comment" and "\n" in text:
            kind = "newline"  # a multi-line comment ends a line as its newlines would
        if kind == "newline":
            if out and out[-1].kind in _ENDS_STATEMENT:
                out.append(_Tok("newline", "\n", line))
        elif kind == "punct":
            out.append(_Tok(text, text, line))
        elif kind not in ("ws", "comment"):
            out.append(_Tok(kind, text, line))
        line += text.count("\n")
        pos = m.end()
    out.append(_Tok("eof", "", line))
    return out


class _Parser:
    def __init__(self, src: str) -> None:
        self.toks = _tokens(src)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self, kind: str) -> _Tok:
        if self.tok.kind != kind:
            raise AlloySyntaxError(f"line {self.tok.line}: expected {kind}, found {self.tok.text or self.tok.kind!r}")
        self.i += 1
        return self.toks[self.i - 1]

    def skip_newlines(self) -> None:
        while self.tok.kind == "newline":
            self.i += 1

    def body(self, until: str) -> tuple[dict[str, Any], list[Block]]:
        attributes: dict[str, Any] = {}
        blocks: list[Block] = []
        self.skip_newlines()
        while self.tok.kind != until:
            line = self.tok.line
            names = [self.take("ident").text]
            while self.tok.kind == ".":
                self.take(".")
                names.append(self.take("ident").text)
            if self.tok.kind == "=":
                if len(names) > 1:
                    raise AlloySyntaxError(f"line {line}: attribute name {'.'.join(names)} may not contain dots")
                self.take("=")
                if names[0] in attributes:
                    raise AlloySyntaxError(f"line {line}: attribute {names[0]} set twice")
                attributes[names[0]] = self.expression()
            else:
                label = None
                if self.tok.kind in ("string", "raw"):
                    label = self.string()
                self.take("{")
                inner_attributes, inner_blocks = self.body("}")
                self.take("}")
                blocks.append(Block(".".join(names), label, inner_attributes, inner_blocks, line))
            if self.tok.kind != until:
                self.take("newline")  # one statement per line
                self.skip_newlines()
        return attributes, blocks

    def string(self) -> str:
        tok = self.tok
        self.i += 1
        if tok.kind == "raw":
            return tok.text[1:-1]
        try:
            return json.loads(tok.text)  # Go's and JSON's escapes agree on everything these files use
        except json.JSONDecodeError as exc:
            raise AlloySyntaxError(f"line {tok.line}: bad string {tok.text}: {exc}") from None

    def expression(self) -> Any:
        tok = self.tok
        if tok.kind in ("string", "raw"):
            return self.string()
        if tok.kind == "number":
            self.i += 1
            return float(tok.text) if "." in tok.text else int(tok.text)
        if tok.kind == "[":
            return self.sequence("[", "]", self.expression)
        if tok.kind == "{":
            return dict(self.sequence("{", "}", self.object_field))
        if tok.kind == "ident":
            self.i += 1
            if tok.text in ("true", "false", "null"):
                return {"true": True, "false": False, "null": None}[tok.text]
            path = [tok.text]
            while self.tok.kind == ".":
                self.take(".")
                path.append(self.take("ident").text)
            return Reference(tuple(path))
        raise AlloySyntaxError(f"line {tok.line}: unsupported expression starting {tok.text or tok.kind!r}")

    def object_field(self) -> tuple[str, Any]:
        key = self.string() if self.tok.kind in ("string", "raw") else self.take("ident").text
        self.take("=")
        return key, self.expression()

    def sequence(self, open_: str, close: str, element) -> list:
        self.take(open_)
        items = []
        self.skip_newlines()
        while self.tok.kind != close:
            items.append(element())
            if self.tok.kind == ",":
                self.take(",")
                self.skip_newlines()
            elif self.tok.kind != close:
                raise AlloySyntaxError(f"line {self.tok.line}: missing ',' before {self.tok.text or 'newline'!r}")
        self.take(close)
        return items


def parse(src: str) -> list[Block]:
    """The file's top-level blocks (an Alloy config file holds components, each a labelled block)."""
    parser = _Parser(src)
    attributes, blocks = parser.body("eof")
    if attributes:
        raise AlloySyntaxError(f"top-level attributes are not components: {sorted(attributes)}")
    return blocks
