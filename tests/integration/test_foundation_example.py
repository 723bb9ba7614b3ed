"""`plan run` on the 3-step shell example and on small recipes: caching, env, export."""

from __future__ import annotations

from pathlib import Path

from testkit import Cli, ProjectFactory, store_snapshot

from crossplan.platforms import build_platform

ALL = {"gen", "count", "report@linux/amd64", "report@linux/arm64"}


def test_first_run_builds_all_and_second_builds_none(
    cli: Cli, shell_project: Path, cache_dir: Path
) -> None:
    first = cli("run", shell_project, "--json")
    assert first.code == 0, first.stderr
    assert first.statuses() == dict.fromkeys(ALL, "built")
    assert first.json()["ok"] is True
    second = cli("run", shell_project, "--json")
    assert second.code == 0, second.stderr
    assert second.statuses() == dict.fromkeys(ALL, "cached")
    keys1 = {n: s["key"] for n, s in first.steps().items()}
    assert keys1 == {n: s["key"] for n, s in second.steps().items()}
    assert sorted(keys1.values()) == sorted(store_snapshot(cache_dir).keys)
    report = second.steps()["report@linux/amd64"]
    assert list(report["outputs"]) == ["out/report.txt"]


def test_one_changed_input_byte_rebuilds_that_step_and_its_dependents(
    cli: Cli, shell_project: Path
) -> None:
    assert cli("run", shell_project, "--json").code == 0
    a = shell_project / "gen" / "a.txt"
    a.write_bytes(a.read_bytes().replace(b"h", b"j", 1))
    result = cli("run", shell_project, "--json")
    assert result.code == 0, result.stderr
    assert result.statuses() == {
        "gen": "built", "count": "cached",
        "report@linux/amd64": "built", "report@linux/arm64": "built",
    }
    again = cli("run", shell_project, "--json")
    assert set(again.statuses().values()) == {"cached"}


def test_early_cutoff_dep_rebuilt_to_identical_bytes(cli: Cli, shell_project: Path) -> None:
    assert cli("run", shell_project, "--json").code == 0
    toml = shell_project / "plan.toml"
    old = '"cat a.txt b.txt > greeting.txt"'
    assert old in toml.read_text()
    toml.write_text(toml.read_text().replace(old, '"cat a.txt b.txt > greeting.txt # same"'))
    result = cli("run", shell_project, "--json")
    assert result.code == 0, result.stderr
    assert result.statuses() == {
        "gen": "built", "count": "cached",
        "report@linux/amd64": "cached", "report@linux/arm64": "cached",
    }


def test_description_change_rebuilds_nothing(cli: Cli, shell_project: Path) -> None:
    assert cli("run", shell_project, "--json").code == 0
    toml = shell_project / "plan.toml"
    toml.write_text(toml.read_text().replace("concatenate the greeting parts", "reworded"))
    result = cli("run", shell_project, "--json")
    assert result.statuses() == dict.fromkeys(ALL, "cached")


def test_platform_flag_selects_targets(cli: Cli, shell_project: Path) -> None:
    result = cli("run", shell_project, "--json", "--platform", "arm64")
    assert result.code == 0, result.stderr
    assert result.statuses() == {"gen": "built", "count": "built", "report@linux/arm64": "built"}
    both = cli("run", shell_project, "--json")
    assert both.statuses() == {
        "gen": "cached", "count": "cached",
        "report@linux/amd64": "built", "report@linux/arm64": "cached",
    }


def test_named_step_builds_only_it_and_its_deps(cli: Cli, shell_project: Path) -> None:
    result = cli("run", shell_project, "gen", "--json")
    assert result.code == 0, result.stderr
    assert result.statuses() == {"gen": "built"}


def test_export_layout(cli: Cli, shell_project: Path, tmp_path: Path) -> None:
    dest = tmp_path / "dist"
    result = cli("run", shell_project, "--export", dest)
    assert result.code == 0, result.stderr
    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert files == [
        "count/any/count.txt",
        "gen/any/greeting.txt",
        "report/linux_amd64/out/report.txt",
        "report/linux_arm64/out/report.txt",
    ]
    assert (dest / "gen/any/greeting.txt").read_text() == "hello\nworld\n"
    assert (dest / "report/linux_arm64/out/report.txt").read_text().endswith(
        "3 words for linux/arm64 (arm64)\n"
    )
    # exporting from a fully cached run gives the same tree
    again = tmp_path / "dist2"
    assert cli("run", shell_project, "--export", again).code == 0
    assert sorted(p.relative_to(again).as_posix() for p in again.rglob("*") if p.is_file()) == files


def test_export_dir_names_the_variant(
    cli: Cli, make_project: ProjectFactory, tmp_path: Path
) -> None:
    proj = make_project("""
        [project]
        name = "v7"
        platforms = ["armhf"]
        [steps.s]
        kind = "shell"
        src = "src"
        command = ["sh", "-c", "echo $TARGETARCH$TARGETVARIANT > o.txt"]
        outputs = ["o.txt"]
    """)
    assert cli("run", proj, "--export", tmp_path / "d").code == 0
    assert (tmp_path / "d/s/linux_arm_v7/o.txt").read_text() == "armv7\n"


ENV_RECIPE = """
    [project]
    name = "env"
    platforms = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
    [steps.show]
    kind = "shell"
    src = "src"
    env = { FROM_RECIPE = "yes" }
    command = ["sh", "-c", "env > env.txt; pwd > pwd.txt; touch \\"$HOME/h\\" \\"$TMPDIR/t\\""]
    outputs = ["env.txt", "pwd.txt"]
"""


def _read_env(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_step_environment_is_buildx_like_scrubbed_and_hermetic(
    cli: Cli, make_project: ProjectFactory, tmp_path: Path, cache_dir: Path
) -> None:
    proj = make_project(ENV_RECIPE)
    dest = tmp_path / "dist"
    result = cli(
        "run", proj, "--export", dest,
        env={"FOO_SECRET": "hunter2", "SOURCE_DATE_EPOCH": "1700000000", "GOPROXY": "off"},
    )
    assert result.code == 0, result.stderr
    build = build_platform()
    expected_target = {
        "linux_amd64": ("linux/amd64", "amd64", ""),
        "linux_arm64": ("linux/arm64", "arm64", ""),
        "linux_arm_v7": ("linux/arm/v7", "arm", "v7"),
    }
    for slug, (plat, arch, variant) in expected_target.items():
        env = _read_env(dest / "show" / slug / "env.txt")
        assert env["TARGETPLATFORM"] == plat
        assert env["TARGETOS"] == "linux"
        assert env["TARGETARCH"] == arch
        assert env["TARGETVARIANT"] == variant
        assert env["BUILDPLATFORM"] == str(build)
        assert env["BUILDOS"] == build.os
        assert env["BUILDARCH"] == build.arch
        assert env["SOURCE_DATE_EPOCH"] == "1700000000"
        assert env["FROM_RECIPE"] == "yes"
        assert env["GOPROXY"] == "off"  # allowlisted host variable
        assert "FOO_SECRET" not in env
        assert "CROSSPLAN_CACHE_DIR" not in env
        assert "XDG_CACHE_HOME" not in env
        # in the sandbox the staged work dir is bound at /crossplan/work
        workdir = Path((dest / "show" / slug / "pwd.txt").read_text().strip())
        assert workdir == Path("/crossplan/work")
        assert Path(env["HOME"]).parent == workdir
        assert Path(env["TMPDIR"]).parent == workdir
    assert not [p for p in (cache_dir / "tmp").iterdir() if "work" in p.name]  # removed


def test_source_date_epoch_defaults_to_the_project_value(
    cli: Cli, make_project: ProjectFactory, tmp_path: Path
) -> None:
    proj = make_project("""
        [project]
        name = "sde"
        platforms = ["amd64"]
        source_date_epoch = 1234
        [steps.s]
        kind = "shell"
        src = "src"
        command = ["sh", "-c", "echo $SOURCE_DATE_EPOCH > o"]
        outputs = ["o"]
    """)
    assert cli("run", proj, "--export", tmp_path / "d").code == 0
    assert (tmp_path / "d/s/linux_amd64/o").read_text() == "1234\n"


def test_cache_dir_option_overrides_the_environment(
    cli: Cli, shell_project: Path, tmp_path: Path, cache_dir: Path
) -> None:
    other = tmp_path / "other-cache"
    result = cli("run", shell_project, "--json", "--cache-dir", other)
    assert result.code == 0, result.stderr
    assert len(store_snapshot(other).keys) == 4
    assert store_snapshot(cache_dir).keys == ()
    # and the default (XDG) location is untouched
    assert not (tmp_path / "xdg" / "crossplan").exists()


def test_default_store_is_under_xdg_cache_home(
    cli: Cli, shell_project: Path, tmp_path: Path
) -> None:
    result = cli("run", shell_project, "--json", env={"CROSSPLAN_CACHE_DIR": ""})
    assert result.code == 0, result.stderr
    assert len(store_snapshot(tmp_path / "xdg" / "crossplan").keys) == 4


def test_missing_program_exits_3(cli: Cli, make_project: ProjectFactory, cache_dir: Path) -> None:
    proj = make_project("""
        [project]
        name = "tool"
        platforms = ["amd64"]
        [steps.s]
        kind = "shell"
        src = "src"
        command = ["crossplan-test-no-such-tool"]
    """)
    result = cli("run", proj)
    assert result.code == 3, result.stderr
    assert "program not found: crossplan-test-no-such-tool" in result.stderr
    assert store_snapshot(cache_dir).keys == ()
