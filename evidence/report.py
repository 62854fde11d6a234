"""Tables the suites print and write to build/: GitHub-flavoured Markdown, readable in a terminal too."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field

BUILD_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "build")


@dataclass
class Table:
    title: str
    columns: list[str]
    rows: list[list[object]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"{self.title}: {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(list(cells))

    def markdown(self) -> str:
        cells = [[fmt(c) for c in row] for row in self.rows]
        widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(self.columns)]

        def line(values: list[str]) -> str:
            return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

        out = [f"### {self.title}", "", line(self.columns), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        out += [line(r) for r in cells]
        out += [""] + [f"- {n}" for n in self.notes] if self.notes else []
        return "\n".join(out) + "\n"


def fmt(value: object) -> str:
    """Numbers rounded for reading: 12,345 / 12.3 / 0.123; None as an em dash."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3g}" if value else "0"
    return str(value)


def machine() -> str:
    """One line naming what the figures were measured on: they mean little without it."""
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    # The load average says whether something else shared the cores while the figures were taken.
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"Machine: {os.cpu_count()} cores ({cpu}), {mem_gib:.0f} GiB RAM, "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}; "
        f"load average (1/5/15 min) {load}"
    )


def write(name: str, heading: str, tables: list[Table]) -> str:
    """Print the tables and write them to build/<name>; return the file's path."""
    text = f"## {heading}\n\n{machine()}\n\n" + "\n".join(t.markdown() for t in tables)
    print("\n" + text, flush=True)
    os.makedirs(BUILD_DIR, exist_ok=True)
    path = os.path.join(BUILD_DIR, name)
    with open(path, "w") as f:
        f.write(text)
    print(f"written to {os.path.relpath(path)}", flush=True)
    return path
