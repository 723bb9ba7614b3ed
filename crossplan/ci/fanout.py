"""The native-runner fan-out (``plan ci ... --runners native``), as data (pure).

One job per target platform, on a runner of that architecture where CI systems have one
(amd64, arm64; any other platform is cross-compiled on an amd64 runner, with QEMU only for
its smoke tests), each building and testing just its platform (``plan run --platform P``)
and, on the default branch, pushing its images by digest (``plan publish-platform``, which
records the manifests in ``DIGESTS``); then one job assembling each image's multi-platform
index from those records and pushing the tags (``plan publish-index DIGESTS``). The shared
remote cache ties the jobs together: a platform-independent step is built once.
"""

from __future__ import annotations

from dataclasses import dataclass

from crossplan.ci.needs import ARM_RUNNER, RUNNER, CiOptions, Needs, analyze
from crossplan.platforms import Platform
from crossplan.recipes.models import Recipe

__all__ = ["DIGESTS", "Fanout", "fanout", "runner_for", "slug"]

DIGESTS = ".crossplan/digests"  # relative to the repository root, where commands run


def runner_for(platform: Platform) -> Platform:
    """The runner architecture a platform's job runs on: its own where CI has it."""
    return ARM_RUNNER if platform.arch == ARM_RUNNER.arch else RUNNER


def slug(platform: Platform) -> str:
    """``linux/arm/v7`` -> ``linux-arm-v7`` (job names, artifact names)."""
    return str(platform).replace("/", "-")


@dataclass(frozen=True)
class Fanout:
    """``overall``: the whole plan's needs (platforms, logins, push); ``jobs``: one per
    platform (``only`` set, ``runner`` its machine)."""

    overall: Needs
    jobs: tuple[Needs, ...]
    digests: str = DIGESTS

    def publish_index_command(self) -> str:
        return f"plan publish-index {self.digests}"


def fanout(recipe: Recipe, options: CiOptions, *, plan_file: str) -> Fanout:
    overall = analyze(recipe, options, plan_file=plan_file)
    jobs = tuple(analyze(recipe, options, plan_file=plan_file, runner=runner_for(p), only=p)
                 for p in overall.platforms)
    return Fanout(overall, jobs)
