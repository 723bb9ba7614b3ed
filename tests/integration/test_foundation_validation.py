"""Every recipe validation error: message names plan.toml, the step and the problem; exit 2;
the store is left exactly as it was."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from testkit import Cli, plan_argv, store_snapshot

GOOD_STEP = """
[steps.ok]
kind = "shell"
src = "src"
command = ["sh", "-c", "cat input.txt > ok.txt"]
outputs = ["ok.txt"]
"""

HEAD = '[project]\nname = "bad"\nplatforms = ["linux/amd64", "linux/arm64"]\n'


def _step(body: str, name: str = "a") -> str:
    return f"\n[steps.{name}]\n" + textwrap.dedent(body).strip() + "\n"


SHELL = 'kind = "shell"\nsrc = "src"\ncommand = ["true"]\n'

CASES: dict[str, tuple[str, str | None, list[str]]] = {
    # name: (plan.toml text, step named in the message, expected fragments)
    "toml-syntax": (
        HEAD + GOOD_STEP + '\n[steps.a]\nkind = "shell"\nsrc = "src/\ncommand = ["true"]\n',
        None,
        [":13: TOML syntax error", "line 13"],
    ),
    "unknown-field": (
        HEAD + GOOD_STEP + _step(SHELL + 'colour = "blue"'),
        "a",
        ["unknown field 'colour'"],
    ),
    "unknown-kind": (
        HEAD + GOOD_STEP + _step('kind = "fortran"\nsrc = "src"\ncommand = ["true"]'),
        "a",
        ["unknown kind 'fortran'", "shell"],
    ),
    "cycle": (
        HEAD + _step(SHELL + 'deps = ["b"]') + _step(SHELL + 'deps = ["a"]', "b"),
        None,
        ["dependency cycle: "],
    ),
    "unknown-dep": (
        HEAD + GOOD_STEP + _step(SHELL + 'deps = ["okk"]'),
        "a",
        ["unknown dep 'okk'", "did you mean 'ok'?"],
    ),
    "unknown-project-platform": (
        HEAD.replace('"linux/arm64"', '"linux/arm65"') + GOOD_STEP,
        None,
        ["unknown or unsupported platform 'linux/arm65'", "did you mean 'linux/arm64'?"],
    ),
    "unknown-step-platform": (
        HEAD + GOOD_STEP + _step(SHELL + 'platforms = ["linux/riscv46"]'),
        "a",
        ["unknown or unsupported platform 'linux/riscv46'", "did you mean 'linux/riscv64'?"],
    ),
    "missing-src": (
        HEAD + GOOD_STEP + _step('kind = "shell"\ncommand = ["true"]'),
        "a",
        ["missing 'src'"],
    ),
    "src-does-not-exist": (
        HEAD + GOOD_STEP + _step('kind = "shell"\nsrc = "nowhere/"\ncommand = ["true"]'),
        "a",
        ["src 'nowhere/' does not exist"],
    ),
    "absolute-src": (
        HEAD + GOOD_STEP + _step('kind = "shell"\nsrc = "/etc"\ncommand = ["true"]'),
        "a",
        ["src path '/etc' is absolute"],
    ),
    "absolute-output": (
        HEAD + GOOD_STEP + _step(SHELL + 'outputs = ["/tmp/x"]'),
        "a",
        ["output path '/tmp/x' is absolute"],
    ),
    "dotdot-src": (
        HEAD + GOOD_STEP + _step('kind = "shell"\nsrc = "../src"\ncommand = ["true"]'),
        "a",
        ["src path '../src' escapes the project (..)"],
    ),
    "dotdot-output": (
        HEAD + GOOD_STEP + _step(SHELL + 'outputs = ["out/../../x"]'),
        "a",
        ["output path 'out/../../x' escapes the project (..)"],
    ),
    "same-output": (
        HEAD + GOOD_STEP + _step('kind = "shell"\nsrc = "src/"\ncommand = ["true"]\n'
                                 'outputs = ["./ok.txt"]'),
        "a",
        ["output './ok.txt' is also written by step 'ok'"],
    ),
    # Every field validated at load: each an exit 2 naming file, line and step, nothing written.
    "empty-command": (
        HEAD + GOOD_STEP + _step('kind = "shell"\nsrc = "src"\ncommand = []'),
        "a",
        ["plan.toml:14: step 'a': command is empty"],
    ),
    "env-name-with-equals": (
        HEAD + GOOD_STEP + _step(SHELL + 'env = { "A=B" = "1" }'),
        "a",
        ["plan.toml:15: step 'a': env name 'A=B' is not a valid variable name"],
    ),
    "nul-in-src": (
        HEAD + GOOD_STEP + _step('kind = "shell"\nsrc = "src\\u0000"\ncommand = ["true"]'),
        "a",
        ["plan.toml:13: step 'a': src contains a NUL byte"],
    ),
    "huge-src": (
        HEAD + GOOD_STEP + _step(f'kind = "shell"\nsrc = "{"s" * 100_000}"\ncommand = ["true"]'),
        "a",
        ["plan.toml:13: step 'a': src 'sss", "(100000 characters) is too long"],
    ),
    "invalid-exclude": (
        HEAD + GOOD_STEP + _step(SHELL + 'exclude = ["!"]'),
        "a",
        ["plan.toml:15: step 'a': exclude pattern '!' is not a valid gitignore pattern"],
    ),
    "output-is-the-work-dir": (
        HEAD + GOOD_STEP + _step(SHELL + 'outputs = ["."]'),
        "a",
        ["plan.toml:15: step 'a': output path '.' is the whole work dir"],
    ),
    "empty-step-platforms": (
        HEAD + GOOD_STEP + _step(SHELL + "platforms = []"),
        "a",
        ["plan.toml:15: step 'a': platforms is empty"],
    ),
    "copy-mode-special-bits": (
        HEAD + GOOD_STEP + _step('kind = "image"\ncopy = [{ from = "ok", dest = "/", mode = -1 }]',
                                 "img"),
        "img",
        ["plan.toml:13: step 'img': copy mode -1 is out of range (0 to 0o777)",
         "allow_special_bits"],
    ),
    "copy-dest-dotdot": (
        HEAD + GOOD_STEP + _step('kind = "image"\ncopy = [{ from = "ok", dest = "/x/../.." }]',
                                 "img"),
        "img",
        ["plan.toml:13: step 'img': copy dest '/x/../..' escapes the image root (..)"],
    ),
    "tag-with-space": (
        HEAD + GOOD_STEP + _step('kind = "image"\ntags = ["localhost:5000/x:1 0"]', "img"),
        "img",
        ["plan.toml:13: step 'img': image tag 'localhost:5000/x:1 0' is not an image reference"],
    ),
}


@pytest.fixture(scope="module")
def seeded_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding one successful build of the `ok` step (built once per module)."""
    import os
    import subprocess

    root = tmp_path_factory.mktemp("seed")
    proj = root / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "input.txt").write_text("input\n")
    (proj / "plan.toml").write_text(HEAD + GOOD_STEP)
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    proc = subprocess.run(
        plan_argv("run", str(proj), "--json", "--cache-dir", str(root / "cache")),
        env=env, capture_output=True, text=True, check=False, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert {s["status"] for s in json.loads(proc.stdout)["steps"]} == {"built"}
    return root / "cache"


def _listing(root: Path) -> list[tuple[str, int]]:
    return sorted(
        (p.relative_to(root).as_posix(), p.stat().st_size if p.is_file() else -1)
        for p in root.rglob("*")
    )


@pytest.mark.parametrize("case", sorted(CASES))
def test_validation_error(
    case: str, cli: Cli, tmp_path: Path, cache_dir: Path, seeded_store: Path
) -> None:
    text, step, fragments = CASES[case]
    shutil.copytree(seeded_store, cache_dir)
    before_listing, before = _listing(cache_dir), store_snapshot(cache_dir)
    assert len(before.keys) == 2
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "src" / "input.txt").write_text("input\n")
    (proj / "plan.toml").write_text(text)

    result = cli("run", proj)

    assert result.code == 2, (result.stdout, result.stderr)
    assert str(proj / "plan.toml") in result.stderr
    if step is not None:
        assert f"step '{step}'" in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr
    assert "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    assert store_snapshot(cache_dir) == before
    assert _listing(cache_dir) == before_listing


@pytest.mark.parametrize(
    "case", ["empty-command", "nul-in-src", "huge-src", "copy-mode-special-bits", "tag-with-space"]
)
def test_bad_recipe_creates_no_store(case: str, cli: Cli, tmp_path: Path, cache_dir: Path) -> None:
    """Rejected when loaded: the --cache-dir is never created."""
    text, step, fragments = CASES[case]
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "plan.toml").write_text(text)
    store = tmp_path / "fresh-store"
    result = cli("run", proj, "--cache-dir", store)
    assert result.code == 2, (result.stdout, result.stderr)
    assert f"{proj / 'plan.toml'}:" in result.stderr and f"step '{step}'" in result.stderr
    assert fragments[0] in result.stderr
    assert "Traceback" not in result.stderr
    assert not store.exists() or not any(store.iterdir())
    assert not cache_dir.exists() or not any(cache_dir.iterdir())


def test_cycle_message_prints_the_loop(cli: Cli, tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "plan.toml").write_text(
        HEAD + _step(SHELL + 'deps = ["c"]') + _step(SHELL + 'deps = ["a"]', "b")
        + _step(SHELL + 'deps = ["b"]', "c")
    )
    result = cli("run", proj)
    assert result.code == 2
    loops = ("a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c")
    assert any(f"dependency cycle: {loop}" in result.stderr for loop in loops), result.stderr


def test_json_mode_reports_the_error_as_json(cli: Cli, tmp_path: Path, cache_dir: Path) -> None:
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "plan.toml").write_text(HEAD + GOOD_STEP + _step(SHELL + 'deps = ["okk"]'))
    result = cli("run", proj, "--json")
    assert result.code == 2
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert doc["exit_code"] == 2
    assert "unknown dep 'okk'" in doc["error"]
    assert not cache_dir.exists()


def test_unknown_platform_flag_exits_2_with_suggestion(
    cli: Cli, tmp_path: Path, cache_dir: Path
) -> None:
    proj = tmp_path / "proj"
    (proj / "src").mkdir(parents=True)
    (proj / "plan.toml").write_text(HEAD + GOOD_STEP)
    result = cli("run", proj, "--platform", "linux/amd64,linux/arm65")
    assert result.code == 2
    assert "unknown or unsupported platform 'linux/arm65'" in result.stderr
    assert "did you mean 'linux/arm64'?" in result.stderr
    assert not cache_dir.exists()


def test_missing_recipe_exits_2(cli: Cli, tmp_path: Path) -> None:
    result = cli("run", cwd=tmp_path)  # no plan.toml here nor in any parent directory
    assert result.code == 2
    assert f"no plan.toml in {tmp_path} or any parent directory" in result.stderr
