"""What a CI log shows of a long build: piped `plan run` on a cold C/zig build (one C file
for linux/arm64 with an EMPTY toolcache, so zig first builds its libc: tens of seconds)
prints its first progress line within 2 s and then one at least every 10 s until it is done,
timed by this test's own clock as the lines arrive."""

from __future__ import annotations

import itertools
import subprocess
import threading
import time
from pathlib import Path

from testkit import ProjectFactory, plan_argv

ZIG_C = """
[project]
name = "cold"
platforms = ["linux/arm64"]

[steps.hello-c]
kind = "c"
src = "c/"
build = ["sh", "-c", "$CC $CFLAGS -o hello hello.c $LDFLAGS"]
outputs = ["hello"]
compiler = "zig"
"""
HELLO = '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'


def _timed_lines(argv: list[str], env: dict[str, str], cwd: Path,
                 timeout: float = 600) -> tuple[float, list[tuple[float, str]], float, int, str]:
    """Start, each stderr line with the time it arrived, the end, exit code, stdout."""
    started = time.monotonic()
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1)
    stdout: list[str] = []
    reader = threading.Thread(target=lambda: stdout.append(proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    lines: list[tuple[float, str]] = []
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            lines.append((time.monotonic(), line.rstrip("\n")))
        code = proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ended = time.monotonic()
    reader.join()
    for pipe in (proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()
    return started, lines, ended, code, "".join(stdout)


def test_piped_cold_zig_build_says_something_at_least_every_10s(
    tmp_path: Path, make_project: ProjectFactory, cli_env: dict[str, str]
) -> None:
    proj = make_project(ZIG_C, files={"c/hello.c": HELLO})
    toolcache = tmp_path / "empty-toolcache"
    toolcache.mkdir()
    env = {**cli_env, "CROSSPLAN_TOOLCACHE_DIR": str(toolcache)}
    # Piped and without --progress: plain lines on stderr.
    started, lines, ended, code, stdout = _timed_lines(plan_argv("run", str(proj)), env,
                                                       tmp_path)
    log = "\n".join(f"{t - started:6.1f}  {text}" for t, text in lines)
    assert code == 0, log
    assert "built" in stdout
    assert ended - started > 15, f"not a cold build ({ended - started:.1f} s):\n{log}"
    first = lines[0][0] - started
    assert first <= 2.0, f"first line after {first:.1f} s:\n{log}"
    times = [started, *(t for t, _ in lines), ended]
    gaps = [b - a for a, b in itertools.pairwise(times[1:])]
    assert max(gaps) <= 10.0, f"a silence of {max(gaps):.1f} s:\n{log}"
    texts = [text for _, text in lines]
    assert any(t.endswith("hello-c@linux/arm64: compiling") for t in texts), log
    assert any("hello-c@linux/arm64: still compiling (" in t for t in texts), log
    assert texts[0].startswith("[") and "planning:" in texts[0], log
    assert any("hello-c@linux/arm64: built in" in t and "[1/1]" in t for t in texts), log
