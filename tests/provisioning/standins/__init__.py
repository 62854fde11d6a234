"""Stateful stand-ins for docker, minikube and kubectl on a private PATH (see standin.py for what each
answer reproduces and where it comes from), plus the real helm binary."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from tests.support.chart import helm_binary

STANDIN = Path(__file__).with_name("standin.py")
TOOLS = ("docker", "minikube", "kubectl")


@dataclass
class Standins:
    root: Path

    def __post_init__(self) -> None:
        self.bin_dir = self.root / "bin"
        self.home = self.root / "home"
        self.state_path = self.root / "state.json"
        self.log_path = self.root / "calls.jsonl"
        self.bin_dir.mkdir(parents=True)
        self.home.mkdir()
        for tool in TOOLS:
            (self.bin_dir / tool).symlink_to(STANDIN)
        (self.bin_dir / "helm").symlink_to(os.path.realpath(helm_binary()))  # the real helm 3.17

    def env(self) -> dict[str, str]:
        """The environment a playbook run sees: only the stand-ins and the system's own tools on PATH,
        and a private HOME (so tools_bin_dir, ~/.local/bin, is empty). ATLAS_TOOLS_BIN_DIR follows that HOME:
        `make test` exports the real one (Makefile), which would otherwise point past it."""
        return {
            "PATH": f"{self.bin_dir}:/usr/bin:/bin",
            "HOME": str(self.home),
            "ATLAS_TOOLS_BIN_DIR": str(self.home / ".local" / "bin"),
            "STANDIN_STATE": str(self.state_path),
            "STANDIN_LOG": str(self.log_path),
        }

    def state(self) -> dict:
        if not self.state_path.exists():
            return {"docker": {"running": True}, "profiles": {}, "build_failures": []}
        return json.loads(self.state_path.read_text())

    def update(self, **changes) -> None:
        state = self.state()
        state.update(changes)
        self.state_path.write_text(json.dumps(state))

    def calls(self, tool: str, *prefix: str) -> list[list[str]]:
        """The arguments of every call to ``tool`` whose arguments start with ``prefix``."""
        if not self.log_path.exists():
            return []
        found = [json.loads(line) for line in self.log_path.read_text().splitlines()]
        return [c[1:] for c in found if c[0] == tool and c[1 : 1 + len(prefix)] == list(prefix)]

    def clear_calls(self) -> None:
        self.log_path.unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
