"""The host backend: a scrubbed, buildx-like step environment and command running."""

from __future__ import annotations

from pathlib import Path

import pytest

from crossplan.backends.host import base_env, log_tail, run_commands
from crossplan.errors import EnvironmentProblem
from crossplan.platforms import Platform

HOST = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/root",
    "TMPDIR": "/var/tmp",
    "FOO_SECRET": "hunter2",
    "AWS_SECRET_ACCESS_KEY": "k",
    "GOPROXY": "https://proxy.example",
    "SSH_AUTH_SOCK": "/tmp/agent",
}


ARMV7 = Platform("linux", "arm", "v7")


def _env(workdir: Path, target: Platform | None = ARMV7, **kw: object) -> dict[str, str]:
    return base_env(
        workdir=workdir, target=target, build=Platform("linux", "amd64"),
        source_date_epoch=1700000000, host_env=HOST, **kw,  # type: ignore[arg-type]
    )


def test_env_is_scrubbed_to_the_allowlist(tmp_path: Path) -> None:
    env = _env(tmp_path, allowlist=("GOPROXY",))
    assert env["PATH"] == "/usr/bin:/bin"
    assert env["LANG"] == "C.UTF-8"
    assert env["GOPROXY"] == "https://proxy.example"
    for leaked in ("FOO_SECRET", "AWS_SECRET_ACCESS_KEY", "SSH_AUTH_SOCK"):
        assert leaked not in env
    assert "GOPROXY" not in _env(tmp_path)


def test_home_and_tmpdir_live_in_the_work_dir(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert Path(env["HOME"]).parent == tmp_path
    assert Path(env["TMPDIR"]).parent == tmp_path
    assert Path(env["HOME"]).is_dir() and Path(env["TMPDIR"]).is_dir()


def test_buildx_build_args_and_source_date_epoch(tmp_path: Path) -> None:
    env = _env(tmp_path)
    assert {k: env[k] for k in env if k.startswith(("TARGET", "BUILD"))} == {
        "TARGETPLATFORM": "linux/arm/v7",
        "TARGETOS": "linux",
        "TARGETARCH": "arm",
        "TARGETVARIANT": "v7",
        "BUILDPLATFORM": "linux/amd64",
        "BUILDOS": "linux",
        "BUILDARCH": "amd64",
        "BUILDVARIANT": "",
    }
    assert env["SOURCE_DATE_EPOCH"] == "1700000000"
    assert env["LC_ALL"] == "C" and env["TZ"] == "UTC"


def test_platform_independent_steps_get_no_target_args(tmp_path: Path) -> None:
    env = _env(tmp_path, target=None)
    assert not [k for k in env if k.startswith("TARGET")]
    assert env["BUILDARCH"] == "amd64"


def test_recipe_env_is_applied_last(tmp_path: Path) -> None:
    env = _env(tmp_path, extra={"FOO": "1", "TARGETARCH": "custom"})
    assert env["FOO"] == "1"
    assert env["TARGETARCH"] == "custom"


def test_path_defaults_when_host_has_none(tmp_path: Path) -> None:
    env = base_env(
        workdir=tmp_path, target=None, build=Platform("linux", "amd64"), source_date_epoch=0,
        host_env={},
    )
    assert env["PATH"] == "/usr/local/bin:/usr/bin:/bin"


def test_run_commands_logs_output_and_stops_at_first_failure(tmp_path: Path) -> None:
    log = tmp_path / "log"
    code = run_commands(
        [("sh", "-c", "echo one; echo err >&2"), ("sh", "-c", "exit 7"), ("touch", "never")],
        cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}, log=log, step="s",
    )
    assert code == 7
    text = log.read_text()
    assert "one\n" in text and "err\n" in text
    assert "# exit 7" in text
    assert not (tmp_path / "never").exists()


def test_run_commands_uses_cwd_and_exactly_the_given_env(tmp_path: Path) -> None:
    log = tmp_path / "log"
    assert run_commands(
        [("sh", "-c", "pwd > where; env > env.txt")], cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "ONLY": "me"}, log=log, step="s",
    ) == 0
    assert (tmp_path / "where").read_text().strip() == str(tmp_path)
    names = {line.split("=", 1)[0] for line in (tmp_path / "env.txt").read_text().splitlines()}
    assert "ONLY" in names
    assert "FOO_SECRET" not in names and "HOME" not in names


def test_missing_program_is_an_environment_problem(tmp_path: Path) -> None:
    with pytest.raises(EnvironmentProblem) as info:
        run_commands(
            [("definitely-not-a-program-xyz",)], cwd=tmp_path, env={"PATH": "/usr/bin"},
            log=tmp_path / "log", step="s@linux/amd64",
        )
    assert info.value.exit_code == 3
    assert "definitely-not-a-program-xyz" in info.value.message
    assert info.value.step == "s@linux/amd64"


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    assert log_tail(log, 3) == "line 97\nline 98\nline 99"
    assert log_tail(tmp_path / "missing") == ""
