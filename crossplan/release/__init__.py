"""Release tooling over registries and layouts: per-architecture size reports, tag pruning.

    new, old = read_image(open_source("host/app:1.1")), read_image(open_source("host/app:1.0"))
    report = compare(new, old)                    # per-platform sizes, layers, delta
    print(markdown(report))                       # a table for release notes
    prune("host/app", keep=5, dry_run=False)      # old tags (and arch tags) deleted by digest
"""

from crossplan.release.prune import PruneResult, TagDecision, decide, prune
from crossplan.release.render import markdown, rich_report
from crossplan.release.report import ImageReport, SizeCache, compare, read_image
from crossplan.release.source import ImageSource, open_source, plan_references, sibling

__all__ = [
    "ImageReport",
    "ImageSource",
    "PruneResult",
    "SizeCache",
    "TagDecision",
    "compare",
    "decide",
    "markdown",
    "open_source",
    "plan_references",
    "prune",
    "read_image",
    "rich_report",
    "sibling",
]
