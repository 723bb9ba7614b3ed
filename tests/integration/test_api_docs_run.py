"""docs/api.md is executable: its ```python blocks run in order, in one namespace, from a temp
dir holding a copy of examples/ (they build images, whose labels come from ``git``)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from testkit import EXAMPLES, REPO, SCRUBBED

pytestmark = pytest.mark.integration

DOC = REPO / "docs" / "api.md"


def python_blocks(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def test_docs_api_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = python_blocks(DOC.read_text())
    assert len(blocks) >= 6
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    for var in SCRUBBED:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CROSSPLAN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_api"}
    for i, block in enumerate(blocks, 1):
        code = compile(block, f"docs/api.md block {i}", "exec")
        exec(code, namespace)
