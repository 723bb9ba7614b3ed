"""Image reports as text: a Markdown table for release notes, rich tables for terminals."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from crossplan.release.report import Attached, ImageReport, LayerReport

__all__ = ["human", "markdown", "rich_report", "signed"]

_CREATED_BY_MAX = 72


def human(n: int | None) -> str:
    """``1536`` -> ``1.5 KiB``; exact below 1 KiB; ``?`` when unknown."""
    if n is None:
        return "?"
    size = float(abs(n))
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            text = f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
            return f"-{text}" if n < 0 else text
        size /= 1024
    raise AssertionError("unreachable")


def signed(n: int | None) -> str:
    if n is None:
        return "?"
    return "±0 B" if n == 0 else (f"+{human(n)}" if n > 0 else human(n))


def _attached(items: tuple[Attached, ...]) -> str:
    """``sbom, provenance, signature`` (what the platform manifest's referrers are)."""
    return ", ".join(sorted(a.kind for a in items)) or "none"


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _created_by(layer: LayerReport) -> str:
    text = " ".join(layer.created_by.replace("|", "\\|").replace("`", "'").split())
    text = text.removesuffix(" # buildkit")
    if len(text) > _CREATED_BY_MAX:
        text = text[: _CREATED_BY_MAX - 1] + "…"
    return text


def _layers(report: ImageReport) -> list[tuple[LayerReport, dict[str, LayerReport]]]:
    """Every distinct layer (in platform order, then layer order) and where it appears."""
    rows: dict[str, tuple[LayerReport, dict[str, LayerReport]]] = {}
    order: dict[str, tuple[int, int]] = {}  # digest -> (position, first platform): same
    for n, p in enumerate(report.platforms):  # position across platforms sits together
        for i, layer in enumerate(p.layers):
            rows.setdefault(layer.digest, (layer, {}))[1][p.platform] = layer
            order[layer.digest] = min(order.get(layer.digest, (i, n)), (i, n))
    return [rows[d] for d in sorted(rows, key=lambda d: order[d])]


def _old_layers(report: ImageReport) -> set[str] | None:
    """Layer digests of the image compared against (None without ``--against``)."""
    if report.against is None:
        return None
    return {layer.digest for p in report.against.platforms for layer in p.layers}


def _cell(layer: LayerReport | None) -> str:
    if layer is None:
        return "—"
    return f"{human(layer.size)} ({human(layer.uncompressed)})"


def markdown(report: ImageReport) -> str:
    """A section for release notes: per-platform sizes (and delta), then the layers."""
    lines = [f"### `{report.reference}`", ""]
    kind = "Index" if "index" in report.media_type or "list" in report.media_type else "Manifest"
    about = f"{kind} `{report.digest}`"
    if report.created:
        about += f", created {report.created}"
    if report.against is not None:
        about += f"; compared with `{report.against.reference}`"
    lines += [about + ".", ""]
    delta = {d.platform: d for d in report.delta}
    head = ["Platform", "Compressed", "Uncompressed", "Layers"]
    align = ["---", "---:", "---:", "---:"]
    if report.against is not None:
        head += ["Δ compressed", "Δ uncompressed", "Change"]
        align += ["---:", "---:", "---"]
    lines += ["| " + " | ".join(head) + " |", "| " + " | ".join(align) + " |"]
    for p in report.platforms:
        row = [p.platform, human(p.compressed), human(p.uncompressed), str(len(p.layers))]
        if report.against is not None:
            d = delta.get(p.platform)
            row += [signed(d.compressed), signed(d.uncompressed), d.status] if d else ["", "", ""]
        lines.append("| " + " | ".join(row) + " |")
    for d in report.delta:
        if d.status == "removed":
            lines.append(f"| {d.platform} | — | — | 0 | {signed(d.compressed)} | "
                         f"{signed(d.uncompressed)} | removed |")
    names = [p.platform for p in report.platforms]
    old = _old_layers(report)
    lines += ["", "| Layer | Created by | Step | " + " | ".join(names) + " | Shared |"
              + (" New |" if old is not None else ""),
              "| --- | --- | --- | " + " | ".join("---:" for _ in names) + " | :---: |"
              + (" :---: |" if old is not None else "")]
    for layer, where in _layers(report):
        cells = [_cell(where.get(n)) for n in names]
        shared = "yes" if len(where) > 1 else ""
        new = "" if old is None else (" yes |" if layer.digest not in old else "  |")
        lines.append(f"| `{_short(layer.digest)}` | `{_created_by(layer)}` | "
                     f"{layer.step or 'base'} | " + " | ".join(cells) + f" | {shared} |" + new)
    lines.append("")
    lines.append("Sizes: compressed (uncompressed); compressed is what a pull downloads "
                 "(the manifest's layer sizes).")
    if any(p.attached for p in report.platforms):
        lines.append("")
        lines += [f"Attached to {p.platform}: {_attached(p.attached)}." for p in report.platforms]
    for w in report.warnings:
        lines.append(f"\n> warning: {w}")
    return "\n".join(lines) + "\n"


def rich_report(report: ImageReport) -> RenderableType:
    """Two tables: sizes per platform (with the delta), and layers across platforms."""
    sizes = Table(title=report.reference, title_justify="left", header_style="bold",
                  caption=report.digest, caption_justify="left")
    for col, just in (("platform", "left"), ("compressed", "right"), ("uncompressed", "right"),
                      ("layers", "right"), ("attached", "left")):
        sizes.add_column(col, justify=just)  # type: ignore[arg-type]
    if report.against is not None:
        for col in (f"Δ vs {report.against.reference}", "Δ uncompressed", "change"):
            sizes.add_column(col, justify="right")
    delta = {d.platform: d for d in report.delta}
    for p in report.platforms:
        row = [p.platform, human(p.compressed), human(p.uncompressed), str(len(p.layers)),
               _attached(p.attached)]
        if report.against is not None:
            d = delta.get(p.platform)
            row += [signed(d.compressed), signed(d.uncompressed), d.status] if d else ["", "", ""]
        sizes.add_row(*row)
    names = [p.platform for p in report.platforms]
    layers = Table(header_style="bold")
    layers.add_column("layer")
    layers.add_column("created by", overflow="fold")
    layers.add_column("step")
    for n in names:
        layers.add_column(n, justify="right")
    layers.add_column("shared")
    old = _old_layers(report)
    if old is not None:
        layers.add_column("new")
    for layer, where in _layers(report):
        extra = [] if old is None else ["yes" if layer.digest not in old else ""]
        layers.add_row(_short(layer.digest), Text(_created_by(layer)), layer.step or "base",
                       *[_cell(where.get(n)) for n in names], "yes" if len(where) > 1 else "",
                       *extra)
    parts: list[RenderableType] = [sizes, layers]
    parts += [Text(f"warning: {w}", style="yellow") for w in report.warnings]
    return Group(*parts)
