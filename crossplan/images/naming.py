"""Names of published images: tags grouped by repository, arch tags, --output destinations."""

from __future__ import annotations

from pathlib import Path

from crossplan.errors import RecipeError
from crossplan.recipes.models import ImageStep

__all__ = ["group_tags", "output_for", "ref_name", "tag_names"]


def ref_name(step: ImageStep) -> str | None:
    names = tag_names(step)
    return names[0] if names else None


def tag_names(step: ImageStep) -> list[str]:
    out = []
    for t in step.tags:
        last = t.rsplit("/", 1)[-1]
        if ":" in last:
            out.append(last.rsplit(":", 1)[1])
    return out


def group_tags(tags: tuple[str, ...]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for t in tags:
        head, _, last = t.rpartition("/")
        if ":" in last:
            name, tag = last.rsplit(":", 1)
        else:
            name, tag = last, "latest"
        repo = f"{head}/{name}" if head else name
        groups.setdefault(repo, []).append(tag)
    return groups


def output_for(output: str, step: str, count: int) -> str:
    kind, sep, rest = output.partition(":")
    if not sep or kind not in ("oci", "oci-archive"):
        raise RecipeError(
            f"unknown --output '{output}'", hint="use oci:DIR or oci-archive:FILE.tar"
        )
    if count == 1:
        return output
    if kind == "oci":
        return f"oci:{Path(rest) / step}"
    p = Path(rest)
    return f"oci-archive:{p.with_name(f'{p.stem}-{step}{p.suffix}')}"
