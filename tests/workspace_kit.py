"""The workspace (a root, libs/shared, tools/cli) shared by the unit and integration tests."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path

__all__ = ["CLI", "LIB", "ROOT", "Files", "MakeWs", "write_workspace"]

ROOT = """
[project]
name = "ws"
platforms = ["linux/amd64", "linux/arm64"]

[workspace]
members = ["libs/*", "tools/cli"]

[steps.gen]
kind = "shell"
src = "gen/"
command = ["sh", "-c", "echo generated > gen.txt"]
outputs = ["gen.txt"]
platform_independent = true
"""

LIB = """
[project]
name = "shared"

[steps.lib]
kind = "shell"
src = "src/"
command = ["sh", "-c", "cat lib.txt > lib.out"]
outputs = ["lib.out"]

[steps.doc]
kind = "shell"
src = "src/"
deps = ["lib", ":gen"]
command = ["sh", "-c", "cat deps/lib/lib.out deps/gen/gen.txt > doc.txt"]
outputs = ["doc.txt"]
"""

CLI = """
[project]
name = "cli"
platforms = ["linux/arm64", "linux/riscv64"]

[steps.bin]
kind = "shell"
src = "."
exclude = ["plan.toml"]
deps = ["libs/shared:lib"]
command = ["sh", "-c", "cat main.txt deps/libs/shared:lib/lib.out > cli.txt"]
outputs = ["cli.txt"]

[steps.image]
kind = "image"
copy = [{ from = "bin", dest = "/srv/" }]
"""

Files = Mapping[str, str]
MakeWs = Callable[..., Path]


def write_workspace(root: Path, files: Files | None = None, **overrides: str) -> Path:
    """Write the workspace at ``root`` (``files``/``overrides``: path -> text replacements)."""
    base = {
        "plan.toml": ROOT, "gen/x": "x\n", "README.md": "# ws\n",
        "libs/shared/plan.toml": LIB, "libs/shared/src/lib.txt": "lib v1\n",
        "tools/cli/plan.toml": CLI, "tools/cli/main.txt": "cli main\n",
        **(files or {}), **overrides,
    }
    for rel, text in base.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(textwrap.dedent(text).lstrip())
    return root
