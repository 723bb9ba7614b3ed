"""`plan cache ...`: list, verify, gc and rm store entries; push, pull, keygen (remote cache)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from crossplan import api
from crossplan.cli.common import (
    CacheDir,
    JsonOpt,
    ModeOpt,
    PlanArg,
    PlatformOpt,
    RemoteOpt,
    err,
    handles_errors,
    out,
    warn,
)
from crossplan.cli.progress import ProgressOpt, progress_for
from crossplan.errors import EXIT_STEP_FAILED, RecipeError

__all__ = ["register"]

cache_app = typer.Typer(
    help="Inspect and maintain the local store; push to and pull from the remote cache.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(cache_app, name="cache")


@cache_app.command("ls")
def cache_ls(cache_dir: CacheDir = None, as_json: JsonOpt = False) -> None:
    """List stored entries."""
    with handles_errors(as_json):
        store = api.store_for(cache_dir)
        try:
            entries = store.entries()
        finally:
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
    """Re-hash every blob; evict entries whose blobs are corrupt or missing. Exits 1 when
    it found (and evicted) damage, 0 when the store is clean."""
    warnings: list[str] = []

    def on_warning(message: str) -> None:
        warnings.append(message)
        warn(message)

    with handles_errors(as_json):
        store = api.store_for(cache_dir)
        try:
            n = len(store.keys())
            bad = store.verify(on_warning)
        finally:
            store.close()
    if as_json:
        print(json.dumps({"ok": not bad, "checked": n, "evicted": bad, "warnings": warnings}))
    else:
        out.print(f"checked {n} entries; evicted {len(bad)}")
        for k in bad:
            out.print(f"  evicted {k}")
    if bad:
        raise typer.Exit(EXIT_STEP_FAILED)


def _parse_size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
    t = text.strip().lower().rstrip("b").rstrip("i")
    try:
        if t and t[-1] in units:
            return int(float(t[:-1]) * units[t[-1]])
        return int(t)
    except ValueError:  # a usage error: exit 2
        raise RecipeError(f"bad size '{text}'", hint="e.g. 500M, 2G, 1048576") from None


@cache_app.command("gc")
def cache_gc(
    max_size: Annotated[str, typer.Option("--max-size", help="e.g. 2G")],
    cache_dir: CacheDir = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit the store in MAX_SIZE: drop kept work dirs (of recipes that are gone, then the
    oldest), then the least recently used base image layers, then the oldest entries; then
    delete unreferenced blobs."""
    with handles_errors(as_json):
        limit = _parse_size(max_size)
        store = api.store_for(cache_dir)
        try:
            report = store.collect(limit, grace=3600.0)
        finally:
            store.close()
    if as_json:
        print(json.dumps({
            "removed": report.removed, "freed_bytes": report.freed,
            "leased": {"entries": report.leased_entries, "blobs": report.leased_blobs,
                       "leases": report.leases},
            "tmp_swept": report.swept_tmp, "kept_workdirs_removed": report.stashed,
            "kept_workdirs": {"count": report.stash_left, "bytes": report.stash_bytes},
            "kept_layers_removed": report.layers_removed,
            "kept_layers": {"count": report.layers_left, "bytes": report.layer_bytes},
        }))
        return
    out.print(f"removed {report.removed} entries, freed {report.freed} bytes")
    if report.stashed:
        out.print(f"removed {report.stashed} kept work dir(s) (staged inputs kept for the "
                  "next run of a step: those of recipes that are gone, then the oldest)")
    if report.stash_left:
        out.print(f"kept {report.stash_left} work dir(s), {report.stash_bytes} bytes, within "
                  "the size")
    if report.layers_removed:
        out.print(f"removed {report.layers_removed} kept base image layer(s) (the least "
                  "recently used; a rebuild on their base downloads them again)")
    if report.layers_left:
        out.print(f"kept {report.layers_left} base image layer(s), {report.layer_bytes} bytes "
                  "of their own, within the size")
    if report.leased_entries or report.leased_blobs:
        out.print(f"kept {len(report.leased_entries)} entries and {report.leased_blobs} blobs "
                  f"in use by {report.leases} running process(es)")


@cache_app.command("rm")
def cache_rm(key: str, cache_dir: CacheDir = None, as_json: JsonOpt = False) -> None:
    """Remove one entry (a full key or a unique prefix)."""
    with handles_errors(as_json):
        store = api.store_for(cache_dir)
        try:
            matches = [k for k in store.keys() if k.startswith(key)]  # noqa: SIM118
            if len(matches) != 1:
                raise RecipeError(
                    f"{'no' if not matches else 'several'} entries match '{key}'",
                    hint="see `plan cache ls`",
                )
            store.remove(matches[0])
        finally:
            store.close()
    if as_json:
        print(json.dumps({"removed": matches[0]}))
    else:
        out.print(f"removed {matches[0]}")


def _remote_command(
    what: Literal["push", "pull"], plan_file: Path, platform: str | None,
    cache_dir: Path | None, cache_remote: str | None, cache_mode: str | None, as_json: bool,
    progress: str = "auto",
) -> None:
    """``plan cache push|pull``: one status per node, as a table or JSON; while it works,
    its phases (planning, pushing/pulling) with a heartbeat on stderr (``--progress``)."""
    warnings: list[str] = []

    def on_warning(message: str) -> None:
        warnings.append(message)
        warn(message)

    with handles_errors(as_json), progress_for(progress, as_json=as_json, console=err) as shown:
        shown.begin("planning", "probing toolchains, hashing inputs")
        p = api.plan(api.load(plan_file), platform, cache_dir=cache_dir)
        shown.end("planning", f"{len(p.nodes)} node(s) planned")
        fn = api.cache_push if what == "push" else api.cache_pull
        doing = "pushing to" if what == "push" else "pulling from"
        shown.begin(what, f"{doing} the remote cache ({len(p.nodes)} node(s))")
        statuses = fn(p, cache_dir=cache_dir, cache_remote=cache_remote, cache_mode=cache_mode,
                      on_warning=on_warning, on_event=shown.event)
        tally = {s: sum(1 for v in statuses.values() if v == s) for s in set(statuses.values())}
        shown.end(what, ", ".join(f"{v} {k}" for k, v in sorted(tally.items())) or "nothing")
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
    as_json: JsonOpt = False, progress: ProgressOpt = "auto",
) -> None:
    """Warm the remote cache with the local entries of a plan's steps."""
    _remote_command("push", plan_file, platform, cache_dir, cache_remote, cache_mode, as_json,
                    progress)


@cache_app.command("pull")
def cache_pull(
    plan_file: PlanArg = Path("plan.toml"), platform: PlatformOpt = None,
    cache_dir: CacheDir = None, cache_remote: RemoteOpt = None, cache_mode: ModeOpt = None,
    as_json: JsonOpt = False, progress: ProgressOpt = "auto",
) -> None:
    """Substitute every step of a plan the remote cache holds into the local store."""
    _remote_command("pull", plan_file, platform, cache_dir, cache_remote, cache_mode, as_json,
                    progress)


@cache_app.command("keygen")
def cache_keygen(
    out_dir: Annotated[Path, typer.Option("--out", help="directory for NAME.key and NAME.pub")]
    = Path("."),
    name: Annotated[str | None, typer.Option(help="key name (default: HOSTNAME-1)")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Write an ed25519 key pair for signing remote cache entries."""
    with handles_errors(as_json):
        secret, public = api.cache_keygen(out_dir, name)
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
