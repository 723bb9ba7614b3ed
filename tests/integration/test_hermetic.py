"""Hermetic builds, tried as an adversary would: an input edited during a run is never cached
under the old key; a step sees only its declared inputs (no other host file, no network,
no process outliving `plan`); `plan run --check` catches a nondeterministic step; the image
index does not depend on the checkout's git metadata."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
from testkit import EXAMPLES, Cli, ProjectFactory, plan_argv

pytestmark = pytest.mark.integration

SANDBOX = {"CROSSPLAN_SANDBOX": "bwrap"}  # required: fail rather than run unconfined


def _statuses(res: object) -> dict[str, str]:
    return res.statuses()  # type: ignore[attr-defined, no-any-return]


def test_an_input_edited_during_the_run_is_never_cached_under_the_old_key(
    make_project: ProjectFactory, cli_env: dict[str, str], cli: Cli, cache_dir: Path
) -> None:
    tag = f"3.{os.getpid()}"
    proj = make_project(
        f"""
        [project]
        name = "race"
        platforms = ["linux/amd64"]

        [steps.slow]
        kind = "shell"
        src = "s"
        command = ["sh", "-c", "sleep {tag}; cat s.txt > slow.txt"]
        outputs = ["slow.txt"]
        platform_independent = true

        [steps.b]
        kind = "shell"
        src = "b"
        deps = ["slow"]
        command = ["sh", "-c", "cat in.txt > b.txt"]
        outputs = ["b.txt"]
        platform_independent = true
        """,
        files={"s/s.txt": "s\n", "b/in.txt": "OLD\n"},
    )
    target = proj / "b" / "in.txt"
    run = subprocess.Popen(
        plan_argv("run", str(proj), "--json"), env={**cli_env, **SANDBOX},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while not _sleepers(tag) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _sleepers(tag), "`slow` never started"
    target.write_text("NEW\n")  # planned already (b's key hashed OLD); `slow` is sleeping
    out, err = run.communicate(timeout=120)
    assert run.returncode == 1, err
    steps = {s["id"]: s for s in json.loads(out)["steps"]}
    assert steps["b"]["status"] == "failed"
    assert "input changed during the build" in steps["b"]["error"]
    assert "in.txt" in steps["b"]["error"]
    assert steps["slow"]["status"] == "built"

    target.write_text("OLD\n")  # back to the planned content
    again = cli("run", proj, "--json", "--export", proj / "out", env=SANDBOX)
    assert again.code == 0, again.stderr
    assert _statuses(again)["b"] == "built"  # nothing was stored for NEW under OLD's key
    assert (proj / "out" / "b" / "any" / "b.txt").read_text() == "OLD\n"
    target.write_text("NEW\n")
    third = cli("run", proj, "--json", "--export", proj / "out2", env=SANDBOX)
    assert _statuses(third)["b"] == "built"
    assert (proj / "out2" / "b" / "any" / "b.txt").read_text() == "NEW\n"


def test_undeclared_files_are_invisible_and_declared_ones_work(
    make_project: ProjectFactory, cli: Cli, tmp_path: Path
) -> None:
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("s3cret\n")
    proj = make_project(
        f"""
        [project]
        name = "leak"
        platforms = ["linux/amd64"]

        [steps.sneaky]
        kind = "shell"
        src = "src"
        command = ["sh", "-c", "cat {secret} > o.txt"]
        outputs = ["o.txt"]
        platform_independent = true

        [steps.shadow]
        kind = "shell"
        src = "src"
        command = ["sh", "-c", "cat /etc/shadow > s.txt"]
        outputs = ["s.txt"]
        platform_independent = true

        [steps.declared]
        kind = "shell"
        src = "../outside"
        command = ["sh", "-c", "cat secret.txt > d.txt"]
        outputs = ["d.txt"]
        platform_independent = true
        """,
    )
    # `declared` reads its src from outside the project: move the file in and point at it
    inside = proj / "outside"
    shutil.copytree(secret.parent, inside)
    toml = proj / "plan.toml"
    toml.write_text(toml.read_text().replace('src = "../outside"', 'src = "outside"'))
    res = cli("run", proj, "--json", "-k", "--export", proj / "out", env=SANDBOX)
    assert res.code == 1
    st = res.steps()
    assert st["sneaky"]["status"] == "failed"
    assert "No such file" in st["sneaky"]["error"]
    assert st["shadow"]["status"] == "failed"
    assert st["declared"]["status"] == "built"
    assert (proj / "out" / "declared" / "any" / "d.txt").read_text() == "s3cret\n"
    assert "s3cret" not in res.stdout


def test_tmp_is_the_steps_own_and_a_file_made_there_moves_into_place(
    make_project: ProjectFactory, cli: Cli, tmp_path: Path
) -> None:
    """A sandboxed step's /tmp is its work dir's .tmp: not the host's, empty at each run, and
    on the work dir's mount (`ln`, unlike `mv`, does not fall back to a copy: it fails across
    mounts, as the rename `go build` moves its linked binary with does)."""
    host_tmp = Path("/tmp") / f"crossplan-host-{os.getpid()}"
    host_tmp.write_text("host\n")
    script = (f'test ! -e {host_tmp} && test -z "$(ls -A /tmp)" && cat in.txt > /tmp/made'
              " && ln /tmp/made out.txt && echo junk > /tmp/left")
    try:
        proj = make_project(
            f"""
            [project]
            name = "tmp"
            platforms = ["linux/amd64"]

            [steps.t]
            kind = "shell"
            src = "src"
            command = ["sh", "-c", {json.dumps(script)}]
            outputs = ["out.txt"]
            platform_independent = true
            """,
            files={"src/in.txt": "v1\n"},
        )
        res = cli("run", proj, "--json", "--export", proj / "out", env=SANDBOX)
        assert res.code == 0, res.stderr
        assert (proj / "out" / "t" / "any" / "out.txt").read_text() == "v1\n"
        # the next run (the kept work dir) starts with an empty /tmp again
        (proj / "src" / "in.txt").write_text("v2\n")
        res = cli("run", proj, "--json", "--export", proj / "out2", env=SANDBOX)
        assert res.code == 0, res.stderr
        assert res.steps()["t"]["status"] == "built"
        assert (proj / "out2" / "t" / "any" / "out.txt").read_text() == "v2\n"
    finally:
        host_tmp.unlink()


@pytest.fixture
def listener() -> object:
    """A TCP server on 127.0.0.1 that answers every connection with one line."""
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.sendall(b"hello from the host\n")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(2)
    srv.close()


def test_no_network_unless_the_step_says_so(
    make_project: ProjectFactory, cli: Cli, listener: int
) -> None:
    def step(out: str) -> str:
        return f"""
        kind = "shell"
        src = "src"
        command = ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/{listener}; head -n1 <&3 > {out}"]
        outputs = ["{out}"]
        platform_independent = true
        """
    proj = make_project(
        f"""
        [project]
        name = "net"
        platforms = ["linux/amd64"]

        [steps.offline]
        {step("off.txt")}

        [steps.online]
        network = true
        {step("on.txt")}
        """,
    )
    res = cli("run", proj, "--json", "-k", "--export", proj / "out", env=SANDBOX)
    st = res.steps()
    assert st["offline"]["status"] == "failed", res.stdout
    assert "refused" in st["offline"]["error"] or "unreachable" in st["offline"]["error"]
    assert st["online"]["status"] == "built", st["online"].get("error")
    assert (proj / "out" / "online" / "any" / "on.txt").read_text() == "hello from the host\n"


def _sleepers(tag: str) -> list[int]:
    found = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd[:2] == [b"sleep", tag.encode()]:
                found.append(int(d.name))
    return found


def test_kill_9_of_plan_run_leaves_no_step_process(
    make_project: ProjectFactory, cli_env: dict[str, str]
) -> None:
    tag = f"300.{os.getpid()}"
    proj = make_project(
        f"""
        [project]
        name = "orphans"
        platforms = ["linux/amd64"]

        [steps.long]
        kind = "shell"
        src = "src"
        command = ["sh", "-c", "sleep {tag}; echo done > o.txt"]
        outputs = ["o.txt"]
        platform_independent = true
        """,
    )
    run = subprocess.Popen(plan_argv("run", str(proj)), env={**cli_env, **SANDBOX},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not _sleepers(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _sleepers(tag), "the step never started"
    run.send_signal(signal.SIGKILL)
    run.wait(10)
    deadline = time.monotonic() + 10
    while _sleepers(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _sleepers(tag), "the step's sleep outlived `plan run`"


def test_check_passes_on_the_example_and_fails_on_a_nondeterministic_step(
    make_project: ProjectFactory, cli: Cli, tmp_path: Path
) -> None:
    shell = tmp_path / "shell"
    shutil.copytree(EXAMPLES / "shell", shell)
    built = cli("run", shell, "--json", env=SANDBOX)
    assert built.code == 0, built.stderr
    checked = cli("run", shell, "--check", "--json", env=SANDBOX)
    assert checked.code == 0, checked.stderr
    assert set(_statuses(checked).values()) == {"checked"}

    proj = make_project(
        """
        [project]
        name = "nondet"
        platforms = ["linux/amd64"]

        [steps.stable]
        kind = "shell"
        src = "src"
        command = ["sh", "-c", "cat input.txt > s.txt"]
        outputs = ["s.txt"]
        platform_independent = true

        [steps.clock]
        kind = "shell"
        src = "src"
        command = ["sh", "-c", "date +%N > t.txt"]
        outputs = ["t.txt"]
        platform_independent = true
        """,
    )
    assert cli("run", proj, env=SANDBOX).code == 0
    before = sorted(p.name for p in (tmp_path / "cache" / "blobs").rglob("*") if p.is_file())
    res = cli("run", proj, "--check", "--json", env=SANDBOX)
    assert res.code == 1
    st = res.steps()
    assert st["stable"]["status"] == "checked"
    assert st["clock"]["status"] == "failed"
    assert "not reproducible" in st["clock"]["error"]
    assert "t.txt: size" in st["clock"]["error"] and "first difference at byte" in st[
        "clock"]["error"]
    after = sorted(p.name for p in (tmp_path / "cache" / "blobs").rglob("*") if p.is_file())
    assert before == after  # --check stored nothing


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


def test_index_digest_does_not_depend_on_git_metadata(cli: Cli, tmp_path: Path) -> None:
    digests = []
    for name, origin in (("https", "https://example.com/org/repo.git"),
                         ("local", str(tmp_path / "somewhere" / "repo")), ("nogit", None)):
        proj = tmp_path / name
        shutil.copytree(EXAMPLES / "shell", proj)
        if origin is not None:
            _git(proj, "init", "-q")
            _git(proj, "add", "-A")
            _git(proj, "commit", "-q", "-m", name)  # a different commit id each time
            _git(proj, "remote", "add", "origin", origin)
        res = cli("run", proj, "--json", "--cache-dir", tmp_path / f"cache-{name}",
                  env=SANDBOX)
        assert res.code == 0, res.stderr
        (image,) = res.json()["images"]
        digests.append(image["index_digest"])
        layout = tmp_path / f"layout-{name}"
        out = cli("run", proj, "--output", f"oci:{layout}", "--cache-dir",
                  tmp_path / f"cache-{name}", env=SANDBOX)
        assert out.code == 0, out.stderr
        assert str(tmp_path) not in (layout / "index.json").read_text()
    assert len(set(digests)) == 1, digests
