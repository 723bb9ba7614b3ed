"""`plan daemon start|stop|status`: a resident process that runs `plan` commands warm
(cli/daemon.py serves, cli/client.py hands commands to it)."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crossplan.cli import client
from crossplan.cli.common import JsonOpt, handles_errors, out
from crossplan.cli.spawn import private, spawn
from crossplan.errors import EnvironmentProblem

if TYPE_CHECKING:
    from crossplan.checks.doctor import Check

__all__ = ["check", "register", "status"]

daemon_app = typer.Typer(
    help="A resident crossplan process: commands start warm (no ~0.4 s of imports each). "
    "Every `plan` command goes to it while it runs; CROSSPLAN_DAEMON=0 bypasses it.",
    no_args_is_help=True,
)
IdleOpt = Annotated[float, typer.Option(
    "--idle", help="exit after this many seconds without a command", min=1.0)]


def register(app: typer.Typer) -> None:
    app.add_typer(daemon_app, name="daemon")


def _talk(cmd: str, environ: dict[str, str] | None = None) -> dict[str, Any] | None:
    """Send ``cmd`` (status, stop) to the daemon: its reply, None when none runs."""
    env = dict(os.environ if environ is None else environ)
    path = client.socket_path(env)
    if not private(os.path.dirname(path)):
        return None
    try:
        sock = client.connect(path, timeout=10)
    except OSError:
        return None
    try:
        client.send(sock, {"cmd": cmd}, [])
        return client.receive(sock)
    except (OSError, ValueError):
        return None
    finally:
        sock.close()


def status(environ: dict[str, str] | None = None) -> dict[str, Any]:
    env = dict(os.environ if environ is None else environ)
    reply = _talk("status", env)
    if reply is None:
        return {"running": False, "socket": client.socket_path(env)}
    return {"running": True, **reply}


@daemon_app.command("start")
def start(idle: IdleOpt = client.IDLE_SECONDS, as_json: JsonOpt = False) -> None:
    """Start the daemon for this installation (nothing to do when it runs)."""
    with handles_errors(as_json):
        now = status()
        if not now["running"]:
            now = {"running": True, **spawn(now["socket"], idle), "started_now": True}
        else:
            now["started_now"] = False
    if as_json:
        print(json.dumps(now))
        return
    verb = "started" if now["started_now"] else "already running"
    out.print(f"crossplan daemon {verb}: pid {now['pid']}, socket {now['socket']}",
              highlight=False, soft_wrap=True)


@daemon_app.command("stop")
def stop(as_json: JsonOpt = False) -> None:
    """Stop the daemon (commands running in it finish; commands on a terminal start none
    for the next 10 minutes)."""
    with handles_errors(as_json):
        sock = client.socket_path(dict(os.environ))
        reply = _talk("stop")
        stopped = reply is not None
        if stopped:
            client.hush(sock)  # a command on a terminal does not start one again at once
        deadline = time.monotonic() + 10
        while stopped and os.path.exists(sock) and time.monotonic() < deadline:
            time.sleep(0.02)
        if stopped and os.path.exists(sock):
            raise EnvironmentProblem(f"the crossplan daemon did not stop ({sock} remains)",
                                     hint="plan daemon status; kill its pid")
    if as_json:
        print(json.dumps({"stopped": stopped, "socket": sock}))
    else:
        out.print("crossplan daemon stopped" if stopped else "no crossplan daemon was running",
                  highlight=False)


@daemon_app.command("status")
def status_cmd(as_json: JsonOpt = False) -> None:
    """Whether the daemon runs: its pid, uptime, commands served, what it serves."""
    now = status()
    if as_json:
        print(json.dumps(now))
        return
    if not now["running"]:
        out.print(f"no crossplan daemon running (socket {now['socket']})", highlight=False,
                  soft_wrap=True)
        return
    out.print(f"crossplan daemon pid {now['pid']}: up {now['uptime']:.0f}s, "
              f"{now['served']} command(s) served, {now['modules']} modules loaded\n"
              f"  python {now['python']}, crossplan {now['package']}\n"
              f"  socket {now['socket']}", highlight=False, soft_wrap=True)
    if now.get("stale"):
        out.print(f"  stale: {now['stale']} changed since it started (the next command "
                  "stops it, runs without it and starts a new one)", highlight=False,
                  soft_wrap=True)


def check(environ: dict[str, str] | None = None) -> Check:
    """`plan doctor`'s line about the daemon: whether one serves this installation."""
    from crossplan.checks.doctor import Check

    env = dict(os.environ if environ is None else environ)
    if client.disabled(env):
        return Check("plan daemon", "ok", "off (CROSSPLAN_DAEMON=0): every command starts cold")
    now = status(env)
    if not now["running"]:
        auto = env.get("CROSSPLAN_DAEMON", "auto").lower() in ("", "auto")
        return Check("plan daemon", "ok", "not running: each `plan` starts cold (~0.3 s of "
                     "imports)" + ("; the next command run on a terminal outside CI starts "
                                  "one" if auto else ""),
                     fix="`plan daemon start` keeps one warm", data=now)
    if now.get("stale"):
        return Check("plan daemon", "warn", f"pid {now['pid']} is stale: {now['stale']} "
                     "changed since it started; the next command stops it, runs without "
                     "it and starts a new one", data=now)
    return Check("plan daemon", "ok", f"pid {now['pid']}, up {now['uptime']:.0f}s, "
                 f"{now['served']} command(s) served", data=now)
