"""Names of published images: tags grouped by repository, arch tags, --output destinations."""

from __future__ import annotations

from pathlib import Path

from crossplan.errors import RecipeError
from crossplan.recipes.models import ImageStep

__all__ = ["group_tags", "layout_ref", "output_for", "ref_name", "tag_names"]


def ref_name(step: ImageStep) -> str | None:
    names = tag_names(step)
    return names[0] if names else None


def layout_ref(step_id: str, step: ImageStep) -> str:
    """The ref name an exported layout gives the image index (``oci:DIR:REF`` addresses it;
    each platform's manifest is ``REF-<arch><variant>``): the first tag's tag (``latest``
    when it has none), else the step's name (its own name in a workspace member, without
    the member's path). The same rule for single plans and workspaces."""
    if step.tags:
        last = step.tags[0].rsplit("/", 1)[-1]
        return last.rsplit(":", 1)[1] if ":" in last else "latest"
    return step_id.rpartition(":")[2]


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
    # one destination per image step; a workspace id (member:step) becomes a path without
    # ':' (which would read as oci:DIR:REF)
    if kind == "oci":
        return f"oci:{Path(rest) / step.replace(':', '/')}"
    p = Path(rest)
    flat = step.replace("/", "-").replace(":", "-")
    return f"oci-archive:{p.with_name(f'{p.stem}-{flat}{p.suffix}')}"
