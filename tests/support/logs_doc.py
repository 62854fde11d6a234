"""docs/logs.md's marked sections (<!-- name: begin --> ... <!-- name: end -->) and tables, for the tests
that hold it to the config, the chart and the services' lines."""

from __future__ import annotations

import os
import re

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(REPO_ROOT, "docs", "logs.md")


def text() -> str:
    with open(DOC) as fh:
        return fh.read()


def section(name: str) -> str:
    match = re.search(rf"<!-- {name}: begin -->(.*?)<!-- {name}: end -->", text(), re.DOTALL)
    assert match, f"docs/logs.md has no {name} section"
    return match.group(1)


def table(name: str) -> dict[str, list[str]]:
    """A section's table: the first column's name (backticks off) -> the other cells."""
    rows = {}
    for line in section(name).strip().splitlines()[2:]:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def codes(cell: str) -> set[str]:
    """The `code` spans in a piece of the text."""
    return set(re.findall(r"`([^`]+)`", cell))
