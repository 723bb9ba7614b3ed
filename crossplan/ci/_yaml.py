"""Stable YAML text for pipelines: insertion order, block scripts, indented lists, no folding."""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["dump"]


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # "- item" indented under its key, as CI docs do


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def dump(doc: dict[str, Any], header: list[str]) -> str:
    """``# header`` lines, then ``doc`` with a blank line between top-level keys."""
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=4096, allow_unicode=True,
                     default_flow_style=False)
    lines: list[str] = []
    for line in body.splitlines():
        if lines and line[:1] not in ("", " ", "-", "#"):
            lines.append("")
        lines.append(line)
    return "".join(f"# {h}\n" if h else "#\n" for h in header) + "\n" + "\n".join(lines) + "\n"
