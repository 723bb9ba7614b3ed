"""docs/api.md covers the API: every public name has a docstring and a mention (its python
blocks run in tests/integration/test_api_docs_run.py)."""

from __future__ import annotations

import inspect

from testkit import REPO

import crossplan

DOC = REPO / "docs" / "api.md"


def test_every_public_name_is_documented() -> None:
    reference = DOC.read_text()
    for name in crossplan.__all__:
        obj = getattr(crossplan, name)
        doc = inspect.getdoc(obj) or ""
        generated = doc.startswith(f"{name}(")  # dataclasses' signature stand-in
        assert doc and not generated, f"crossplan.{name} has no docstring"
        assert f"`{name}" in reference, f"crossplan.{name} is missing from docs/api.md"
