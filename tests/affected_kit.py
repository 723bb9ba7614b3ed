"""The mono workspace shared by the affected-targets tests (unit: pure key comparisons;
integration: against git revisions and the CLI)."""

from __future__ import annotations

import textwrap
from pathlib import Path

__all__ = ["API_NODES", "FILES", "LIB_NODES", "WEB_NODES", "write"]

FILES = {
    "plan.toml": """
        [project]
        name = "mono"
        platforms = ["linux/amd64", "linux/arm64"]

        [workspace]
        members = ["libs/*", "services/*"]
        """,
    "README.md": "# mono\n",
    "libs/core/plan.toml": """
        [project]
        name = "core"

        [steps.lib]
        kind = "shell"
        src = "src/"
        command = ["sh", "-c", "cat core.txt > core.out"]
        outputs = ["core.out"]
        """,
    "libs/core/src/core.txt": "core v1\n",
    "services/api/plan.toml": """
        [project]
        name = "api"

        [steps.bin]
        kind = "shell"
        src = "src/"
        deps = ["libs/core:lib"]
        command = ["sh", "-c", "cat api.txt deps/libs/core:lib/core.out > api.out"]
        outputs = ["api.out"]

        [steps.image]
        kind = "image"
        copy = [{ from = "bin", dest = "/srv/" }]
        """,
    "services/api/src/api.txt": "api\n",
    "services/web/plan.toml": """
        [project]
        name = "web"

        [steps.bin]
        kind = "shell"
        src = "src/"
        command = ["sh", "-c", "cat web.txt > web.out"]
        outputs = ["web.out"]

        [steps.image]
        kind = "image"
        copy = [{ from = "bin", dest = "/srv/" }]
        """,
    "services/web/src/web.txt": "web\n",
}
LIB_NODES = {"libs/core:lib@linux/amd64", "libs/core:lib@linux/arm64"}
API_NODES = {"services/api:bin@linux/amd64", "services/api:bin@linux/arm64", "services/api:image"}
WEB_NODES = {"services/web:bin@linux/amd64", "services/web:bin@linux/arm64", "services/web:image"}


def write(root: Path, rel: str, text: str) -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(textwrap.dedent(text).lstrip())
