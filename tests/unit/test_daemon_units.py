"""The daemon's parts without a daemon: where its socket goes, when the client will not use
one, stale-code detection, and that preloading leaves a process safe to fork (one thread,
no grpc, the environment untouched)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crossplan.cli import become, client, daemon, noop, spawn


def test_socket_path_follows_the_environment(tmp_path: Path) -> None:
    mine = client.socket_path({"CROSSPLAN_DAEMON_DIR": str(tmp_path)})
    assert Path(mine).parent == tmp_path and mine.endswith(".sock")
    assert mine == client.socket_path({"CROSSPLAN_DAEMON_DIR": str(tmp_path)})  # stable
    runtime = client.socket_path({"XDG_RUNTIME_DIR": "/run/user/7"})
    assert Path(runtime).parent == Path("/run/user/7/crossplan")
    assert Path(client.socket_path({})).parent == Path(f"/tmp/crossplan-{os.getuid()}")
    assert Path(client.socket_path({"XDG_RUNTIME_DIR": "relative"})).parent == Path(
        f"/tmp/crossplan-{os.getuid()}")  # only an absolute runtime dir counts


def test_private_directories_only(tmp_path: Path) -> None:
    d = tmp_path / "d"
    assert not spawn.private(str(d))  # missing
    d.mkdir(mode=0o700)
    d.chmod(0o700)
    assert spawn.private(str(d))
    for mode in (0o755, 0o770, 0o701):
        d.chmod(mode)
        assert not spawn.private(str(d)), oct(mode)


def test_delegate_runs_nothing_without_a_daemon(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir(mode=0o700)
    d.chmod(0o700)
    env = {"CROSSPLAN_DAEMON_DIR": str(d)}
    assert client.delegate(["run"], env) is None  # no socket
    Path(client.socket_path(env)).write_text("")  # a file where the socket would be
    assert client.delegate(["run"], env) is None
    for off in ("0", "off", "NO", "false"):
        assert client.disabled({"CROSSPLAN_DAEMON": off})
        assert client.delegate(["run"], {**env, "CROSSPLAN_DAEMON": off}) is None
    assert not client.disabled({}) and not client.disabled({"CROSSPLAN_DAEMON": "1"})


def test_changed_code_is_seen(tmp_path: Path) -> None:
    """The daemon compares code signatures as the no-op memo computes them: (path, mtime,
    size) of crossplan's files and the installed distributions' names."""
    f = tmp_path / "m.py"
    f.write_text("x = 1\n")

    def sig(dists: tuple[str, ...] = ("a-1.dist-info",)) -> list[object]:
        files = [[str(f), f.stat().st_mtime_ns, f.stat().st_size]] if f.exists() else []
        return [files, list(dists)]

    st = f.stat()
    snap = sig()
    assert daemon._changed(snap, sig()) is None
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert daemon._changed(snap, sig()) == str(f)
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    f.write_text("x = 22\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert daemon._changed(snap, sig()) == str(f)  # same mtime, other size
    f.unlink()
    assert daemon._changed(snap, sig()) == str(f)
    f.write_text("x = 1\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert daemon._changed(snap, sig()) is None
    changed = daemon._changed(snap, sig(("a-2.dist-info",)))  # a library upgraded
    assert changed is not None and "a-2.dist-info" in changed
    real = noop.code_signature()  # the shape the daemon relies on
    assert daemon._changed(real, noop.code_signature()) is None
    files: list[list[object]] = real[0]  # type: ignore[assignment]
    assert any(str(p[0]).endswith("cli/daemon.py") for p in files)


def test_preloading_leaves_a_process_safe_to_fork() -> None:
    code = """if True:
        import json, os, sys, threading
        before = dict(os.environ)
        from crossplan.cli import commands, daemon
        from crossplan.backends.oci import deflate
        n = daemon.preload()

        def cold(command):  # options whose converter a fork would still build
            subs = getattr(command, "commands", {}).values()
            return sum(getattr(p, "_runtime_param", 0) is None for p in command.params) + sum(
                cold(s) for s in subs)

        print(json.dumps({"threads": threading.active_count(), "modules": n,
                          "grpc": "grpc" in sys.modules,
                          "env": sorted(k for k in os.environ if before.get(k) != os.environ[k]),
                          "loaded": [m for m in ("crossplan.api.running", "crossplan.images.oci",
                                                 "crossplan.backends.elf", "elftools.elf.elffile")
                                     if m in sys.modules],
                          "cold": cold(commands.click_command(True)),
                          "fingerprint": deflate.libdeflate_identity.cache_info().currsize}))
    """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["threads"] == 1 and doc["grpc"] is False and doc["env"] == [], doc
    assert len(doc["loaded"]) == 4 and doc["modules"] > 500, doc
    assert doc["cold"] == 0 and doc["fingerprint"] == 1, doc  # what each fork would redo


def test_a_command_takes_the_callers_limits_or_is_declined() -> None:
    """In a child process (limits are the process's): a lower open-file limit is taken; a
    hard limit above the current one, or another memory limit, declines the command."""
    code = """if True:
        import json, resource
        from crossplan.cli import become, client
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        mine = client.limits()
        out = {"same": become.take_limits(mine)}
        out["lower"] = become.take_limits({**mine, "RLIMIT_NOFILE": [64, 128]})
        out["now"] = list(resource.getrlimit(resource.RLIMIT_NOFILE))
        out["above"] = become.take_limits({**mine, "RLIMIT_NOFILE": [64, 4096]})
        out["after"] = list(resource.getrlimit(resource.RLIMIT_NOFILE))
        out["memory"] = become.take_limits({**mine, "RLIMIT_AS": [1 << 40, 1 << 40]})
        print(json.dumps(out))
    """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["same"] is None and doc["lower"] is None and doc["now"] == [64, 128], doc
    if doc["above"] is None:  # a process allowed to raise hard limits (CAP_SYS_RESOURCE)
        assert doc["after"] == [64, 4096], doc
    else:
        assert "RLIMIT_NOFILE 64/4096 is above the daemon's hard limit 128" in doc["above"]
        assert doc["after"] == [64, 128], doc
    assert "RLIMIT_AS" in doc["memory"], doc


def test_doctor_says_whether_a_daemon_serves_and_whether_it_is_stale(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from crossplan.cli import daemon_cmds

    answers: list[dict[str, object]] = [
        {"running": False, "socket": "/run/x.sock"},
        {"running": True, "pid": 7, "uptime": 12.0, "served": 3, "stale": None},
        {"running": True, "pid": 7, "uptime": 12.0, "served": 3, "stale": "/p/crossplan/x.py"},
        {"running": False, "socket": "/run/x.sock"},
    ]
    monkeypatch.setattr(daemon_cmds, "status", lambda env: answers.pop(0))
    cold, warm, stale = (daemon_cmds.check({}) for _ in range(3))
    assert (cold.status, "not running" in cold.detail, cold.fix) == (
        "ok", True, "`plan daemon start` keeps one warm")
    assert "the next command run on a terminal outside CI starts one" in cold.detail
    assert (warm.status, warm.detail) == ("ok", "pid 7, up 12s, 3 command(s) served")
    assert stale.status == "warn" and "/p/crossplan/x.py changed" in stale.detail, stale
    assert "starts a new one" in stale.detail
    manual = daemon_cmds.check({"CROSSPLAN_DAEMON": "manual"})
    assert "starts one" not in manual.detail
    off = daemon_cmds.check({"CROSSPLAN_DAEMON": "0"})  # never asks
    assert off.status == "ok" and "CROSSPLAN_DAEMON=0" in off.detail


def test_the_wire_carries_requests_with_descriptors_and_replies(tmp_path: Path) -> None:
    """Length-prefixed marshal'd dicts (cli/client.py): the request with three descriptors,
    then replies until the daemon closes; a cut-off reply is an error, not a reply."""
    import socket

    here, there = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with here, there, open(tmp_path / "out", "w") as out:
        request = {"cmd": "run", "argv": ["plan", "run", "é"], "env": {"A": "1"}, "umask": 18}
        client.send(here, request, [0, out.fileno(), 2])
        got, fds = daemon._read(there)
        assert got == request and len(fds) == 3
        os.write(fds[1], b"through the descriptor")  # the caller's stdout, in the daemon
        for fd in fds:
            os.close(fd)
        daemon._send(there, {"pid": 42})
        daemon._send(there, {"exit": 3})
        assert client.receive(here) == {"pid": 42}
        assert client.receive(here) == {"exit": 3}
        for garbage in (b"{not marshal}", b"", client.encode({"exit": 0})[4:-1], b"\xe9"):
            there.sendall(len(garbage).to_bytes(4, "big") + garbage)  # bad bodies, whole
            with pytest.raises(ValueError):
                client.receive(here)
        here.sendall(len(b"[]").to_bytes(4, "big") + b"[]")  # a request that is no request
        with pytest.raises(ValueError):
            daemon._read(there)
        there.sendall(client.encode({"exit": 0})[:-1])
        there.shutdown(socket.SHUT_WR)
        with pytest.raises(ValueError):
            client.receive(here)  # cut off
    assert (tmp_path / "out").read_text() == "through the descriptor"


def test_a_command_handed_to_the_daemon_costs_the_client_no_heavy_imports(
    tmp_path: Path,
) -> None:
    """`plan run` with a daemon running: the client imports neither `socket` (enum,
    selectors) nor `json` (re) nor the no-op memo (hashlib; the daemon's fork answers
    from it), and returns the exit code the daemon sends."""
    import socket
    import threading

    d = tmp_path / "d"
    d.mkdir(mode=0o700)
    d.chmod(0o700)
    env = {**os.environ, "CROSSPLAN_DAEMON_DIR": str(d)}
    env.pop("CROSSPLAN_DAEMON", None)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(client.socket_path(env))
    listener.listen(1)
    seen: list[dict[str, object]] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            request, fds = daemon._read(conn)
            for fd in fds:
                os.close(fd)
            seen.append(request)
            daemon._send(conn, {"pid": os.getpid()})
            daemon._send(conn, {"exit": 7})

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    code = """if True:
        import sys
        print("kept", end="")  # still buffered when the exit code comes: flushed, not lost
        sys.argv = ["plan", "run", "--json"]
        from crossplan.cli import client, main
        real = client.exit_now

        def report(code):
            heavy = [m for m in ("socket", "json", "re", "hashlib", "crossplan.cli.noop",
                                 "typer") if m in sys.modules]
            sys.stderr.write(repr(heavy))
            real(code)

        client.exit_now = report
        main()
        sys.stderr.write("main returned")
    """
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=60, check=False, env=env)
        server.join(10)
    finally:
        listener.close()
    assert proc.returncode == 7, proc.stderr  # the daemon's exit code is the command's
    assert proc.stderr == "[]" and proc.stdout == "kept"
    assert seen and seen[0]["argv"] == ["plan", "run", "--json"] and seen[0]["cmd"] == "run"


class _Sock:
    """A socket whose sendmsg takes ``takes`` bytes and whose peer has closed after that:
    any further send, even of nothing, is EPIPE (as send(2) with length 0 is)."""

    def __init__(self, takes: int | None) -> None:
        self.takes = takes
        self.got = b""

    def sendmsg(self, buffers: list[bytes], ancillary: object) -> int:
        data = buffers[0] if self.takes is None else buffers[0][: self.takes]
        self.got += data
        return len(data)

    def sendall(self, data: bytes) -> None:
        if self.takes is None:
            raise BrokenPipeError(32, "Broken pipe")
        self.got += data


def test_a_request_sent_whole_is_not_followed_by_an_empty_send() -> None:
    """The daemon's fork may answer a fast command (a memoised no-op) and close before the
    client's next call: a send of the empty rest then fails with EPIPE and the client would
    run the command a second time itself. A request sent in pieces is still sent whole."""
    whole = _Sock(None)
    client.send(whole, {"cmd": "run"}, [])  # type: ignore[arg-type]
    assert client.decode(whole.got[4:]) == {"cmd": "run"}
    pieces = _Sock(3)
    client.send(pieces, {"cmd": "run"}, [])  # type: ignore[arg-type]
    assert pieces.got == whole.got


@pytest.mark.parametrize(("options", "expected"), [
    ([], []),
    (["-X", "importtime"], ["-Ximporttime"]),
    (["-W", "error", "-O"], ["-Werror", "-O"]),
    (["-X", "dev"], ["-Xdev", "-Wdefault"]),  # dev mode shows warnings: its -W too
])
def test_interpreter_options_a_daemon_compares(options: list[str], expected: list[str]) -> None:
    """The options a command's interpreter has (a daemon's process for it has the daemon's:
    a command whose differ is declined, so `python -X importtime -m crossplan.cli` times
    its own imports); -u is not among them (it is passed on)."""
    code = "from crossplan.cli import client; print(client.interpreter_options())"
    proc = subprocess.run([sys.executable, *options, "-u", "-c", code], capture_output=True,
                          text=True, timeout=60, check=False,
                          env={k: v for k, v in os.environ.items()
                               if k not in ("PYTHONWARNINGS", "PYTHONDEVMODE")})
    assert proc.returncode == 0, proc.stderr
    got = ast.literal_eval(proc.stdout)
    assert sorted(got) == sorted(expected), got
    assert become.declined({"options": got, "limits": {}}) == (
        None if not expected else
        f"python options {' '.join(got)}, the daemon's "
        f"{' '.join(client.interpreter_options()) or '(none)'}")
