"""What of the outside world a buildx image's key depends on (engine base image, toolchain
images, generator), and whether the machine can run the RUN steps it asks for."""

from __future__ import annotations

from crossplan.backends.buildx.bases import check_base
from crossplan.backends.buildx.binfmt import binfmt_fix, can_execute, read_binfmt
from crossplan.backends.buildx.engine import Engine
from crossplan.backends.buildx.invoke import Buildx
from crossplan.backends.dockerfile import COMPILE_KINDS, DOCKERFILE_SCHEMA
from crossplan.errors import EnvironmentProblem, RecipeError
from crossplan.images.pin import image_identity
from crossplan.planner.container import container_compiled
from crossplan.platforms import Platform, build_platform
from crossplan.recipes.models import ImageStep, Recipe

__all__ = ["buildx_pin", "check_emulation"]


def buildx_pin(recipe: Recipe, sid: str, step: ImageStep, platforms: tuple[Platform, ...]) -> str:
    """What of the outside world a buildx image depends on: the base (engine image id or
    registry digest; checked to hold every platform), toolchain images, the generator."""
    engine = Engine()
    try:
        engine.ping()
        Buildx().version()  # buildx missing: fail now, before any host step compiles
        check_emulation(recipe, sid, platforms)
        base = check_base(step.base, platforms, engine, step=sid, file=recipe.label)
        images: dict[str, str] = {}
        if recipe.buildx.compile == "container":
            images = _toolchain_pins(recipe, sid, step, platforms, engine)
    except EnvironmentProblem as exc:
        if exc.file is None and exc.step is None:  # say which recipe and step needed it
            raise EnvironmentProblem(exc.message, file=recipe.label, step=sid,
                                     hint=exc.hint) from None
        raise
    finally:
        engine.close()
    return image_identity(backend="buildx", dockerfile_schema=DOCKERFILE_SCHEMA, base=base.pin,
                          compile=recipe.buildx.compile, toolchain_images=images)


def check_emulation(
    recipe: Recipe, sid: str, platforms: tuple[Platform, ...], *, naive: bool = False,
    builder_platforms: tuple[Platform, ...] = (),
) -> None:
    """Every platform a RUN executes on (``emulate = true`` stages, naive Dockerfiles) must
    be runnable here, natively or through QEMU binfmt; else exit 3 with the fix."""
    compiled = container_compiled(recipe).get(sid, ())
    if not naive and not any(recipe.steps[s].emulate for s in compiled):
        return
    build = build_platform()
    entries = read_binfmt()
    need = [p for p in platforms if not can_execute(p, build, entries, builder_platforms)]
    if need:
        names = ", ".join(str(p) for p in need)
        raise EnvironmentProblem(
            f"RUN steps execute on {names} (emulate = true), but this machine cannot run "
            f"{names} binaries: QEMU binfmt_misc is not registered for them",
            file=recipe.label, step=sid, hint=binfmt_fix(need),
        )


def _toolchain_pins(
    recipe: Recipe, sid: str, step: ImageStep, platforms: tuple[Platform, ...], engine: Engine
) -> dict[str, str]:
    out: dict[str, str] = {}
    build = build_platform()
    for c in step.copy_:
        dep = recipe.steps[c.from_]
        if dep.kind not in COMPILE_KINDS or c.from_ in out:
            continue
        if not dep.toolchain_image:
            raise RecipeError(
                f'step \'{c.from_}\' has no toolchain_image (needed by compile = "container")',
                file=recipe.label, step=c.from_,
                hint='add toolchain_image = "..." (an image with the compiler and a shell), '
                'or set [buildx] compile = "host"',
            )
        image_id = engine.image_id(dep.toolchain_image)
        if image_id is None:
            raise EnvironmentProblem(
                f"toolchain image {dep.toolchain_image} is not in the local engine",
                file=recipe.label, step=c.from_,
                hint="build it first (`plan toolchain-image go|zig` makes Go and zig images "
                "from PyPI wheels), or load it with `docker load`",
            )
        need = tuple(platforms) if dep.emulate else (build,)
        missing = [p for p in need if not engine.has_platform(dep.toolchain_image, p)]
        if missing:
            raise EnvironmentProblem(
                f"toolchain image {dep.toolchain_image} lacks "
                + ", ".join(str(p) for p in missing), file=recipe.label, step=c.from_,
                hint="compile stages run on the build platform"
                + (" and, with emulate = true, on every target" if dep.emulate else "")
                + "; rebuild the image for those platforms",
            )
        out[c.from_] = f"{dep.toolchain_image}@{image_id}"
    return out
