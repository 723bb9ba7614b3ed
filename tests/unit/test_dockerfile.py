"""Generated Dockerfiles: golden files per shape, copy semantics, escaping, determinism.

Regenerate the goldens with ``CROSSPLAN_UPDATE_GOLDEN=1 pytest tests/unit/test_dockerfile.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from crossplan.backends.dockerfile import (
    DockerfileSpec,
    compile_stage,
    copy_source,
    render,
)
from crossplan.errors import RecipeError
from crossplan.platforms import parse_platforms
from crossplan.recipes import from_dict
from crossplan.recipes.models import CopySpec, ImageStep, Recipe

GOLDEN = Path(__file__).parent / "golden"
PLATFORMS = parse_platforms("linux/amd64,linux/arm64,linux/arm/v7")


def recipe(steps: dict[str, Any], **top: Any) -> Recipe:
    data = {"project": {"name": "demo", "platforms": ["linux/amd64", "linux/arm64"]},
            "steps": steps, **top}
    return from_dict(data, file=Path("/nonexistent/demo/plan.toml"))


IMAGE = {
    "kind": "image",
    "base": "crossplan-ci/busybox:latest",
    "copy": [
        {"from": "hello-go", "dest": "/usr/local/bin/"},
        {"from": "hello-c", "src": "hello-c", "dest": "/usr/local/bin/hello-c", "mode": 0o755},
        {"from": "docs", "src": "out", "dest": "/srv/"},
    ],
    "entrypoint": ["/usr/local/bin/hello-go"],
    "cmd": ["--greet", "world"],
    "env": {"GREETING": 'say "hi" for $USER'},
    "labels": {"org.opencontainers.image.title": "demo"},
    "workdir": "/srv",
    "user": "1000:1000",
    "expose": ["8080/tcp"],
    "tags": ["localhost:5000/demo/hello:1.0"],
}
STEPS = {
    "hello-go": {"kind": "go", "src": "go", "binary": "hello-go", "ldflags": "-s -w",
                 "tags": ["netgo"], "toolchain_image": "crossplan/toolchain-go:1.27.3"},
    "hello-c": {"kind": "c", "src": "c", "build": ["$CC $CFLAGS -o hello-c hello.c", "echo ok"],
                "outputs": ["hello-c"], "toolchain_image": "crossplan/toolchain-zig:0.17.1"},
    "hello-rs": {"kind": "rust", "src": "rs", "toolchain_image": "crossplan/toolchain-rust:1"},
    "docs": {"kind": "shell", "src": "docs", "outputs": ["out"], "platform_independent": True,
             "command": ["sh", "-c", "mkdir out && echo hi > out/a.txt"]},
    "image": IMAGE,
}
FILES: dict[str, tuple[str, ...] | None] = {
    "hello-go": ("hello-go",), "hello-c": ("hello-c",), "docs": ("out/a.txt", "out/b.txt"),
}


def _spec(
    container: tuple[str, ...] = (), *, emulate: frozenset[str] = frozenset()
) -> DockerfileSpec:
    r = recipe(STEPS)
    step = r.steps["image"]
    assert isinstance(step, ImageStep)
    stages = tuple(
        compile_stage(s, r.steps[s], PLATFORMS, image=r.steps[s].toolchain_image or "",
                      binary="hello-rs" if s == "hello-rs" else None,
                      emulate=True if s in emulate else None)
        for s in container
    )
    return DockerfileSpec("demo", "image", step, PLATFORMS, stages, FILES)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CROSSPLAN_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"missing golden {path}; run with CROSSPLAN_UPDATE_GOLDEN=1"
    assert text == path.read_text(), f"{name} changed; diff against {path}"


def test_host_copy_only_golden() -> None:
    text = render(_spec())
    check_golden("dockerfile_host.Dockerfile", text)
    assert "RUN" not in text  # compile = "host": nothing executes


def test_container_compile_golden() -> None:
    text = render(_spec(("hello-go", "hello-c")))
    check_golden("dockerfile_container.Dockerfile", text)
    assert text.count("FROM --platform=$BUILDPLATFORM") == 2


def test_container_rust_golden() -> None:
    r = recipe(STEPS)
    stage = compile_stage("hello-rs", r.steps["hello-rs"], PLATFORMS,
                          image="crossplan/toolchain-rust:1", binary="hello-rs")
    step = r.steps["image"]
    assert isinstance(step, ImageStep)
    step = step.model_copy(update={"copy_": (CopySpec.model_validate(
        {"from": "hello-rs", "dest": "/usr/local/bin/"}),)})
    text = render(DockerfileSpec("demo", "image", step, PLATFORMS, (stage,), {}))
    check_golden("dockerfile_rust.Dockerfile", text)
    assert "armv7-unknown-linux-gnueabihf" in text
    assert "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc" in text


def test_naive_golden() -> None:
    text = render(_spec(("hello-go", "hello-c")), variant="naive")
    check_golden("dockerfile_naive.Dockerfile", text)
    assert "$BUILDPLATFORM" not in text.split("\n", 3)[3]


def test_emulate_true_moves_only_that_stage() -> None:
    text = render(_spec(("hello-go", "hello-c"), emulate=frozenset({"hello-c"})))
    assert "FROM --platform=$BUILDPLATFORM crossplan/toolchain-go:1.27.3 AS build-hello-go" in text
    assert "FROM crossplan/toolchain-zig:0.17.1 AS build-hello-c" in text


def test_cross_env_matches_host_toolchains() -> None:
    """The per-platform exports are the host toolchains' own tables (go_env, zig_target)."""
    text = render(_spec(("hello-go", "hello-c")))
    assert "linux/arm/v7) export GOOS=linux GOARCH=arm GOARM=7 ;;" in text
    assert "CC='zig cc -target arm-linux-musleabihf'" in text
    assert "CC='zig cc -target aarch64-linux-musl'" in text


def test_reordering_the_recipe_keeps_the_text() -> None:
    a = render(_spec(("hello-go", "hello-c")))
    reordered = dict(reversed(list(STEPS.items())))
    r = recipe(reordered)
    step = r.steps["image"]
    assert isinstance(step, ImageStep)
    stages = tuple(compile_stage(s, r.steps[s], PLATFORMS, image=r.steps[s].toolchain_image or "")
                   for s in ("hello-go", "hello-c"))
    assert render(DockerfileSpec("demo", "image", step, PLATFORMS, stages, FILES)) == a


@pytest.mark.parametrize(
    ("spec", "files", "expected"),
    [
        ({"from": "a", "dest": "/bin/"}, ("hello",), ("", "/bin/")),
        ({"from": "a", "dest": "/bin/hello2"}, ("hello",), ("hello", "/bin/hello2")),
        ({"from": "a", "dest": "/opt"}, ("x", "y/z"), ("", "/opt/")),
        ({"from": "a", "src": "out", "dest": "/srv"}, ("out/a", "out/b"), ("out", "/srv/")),
        ({"from": "a", "src": "out", "dest": "/srv/a"}, ("out/a",), ("out/a", "/srv/a")),
        ({"from": "a", "src": "bin/x", "dest": "/usr/bin/"}, ("bin/x", "bin/y"),
         ("bin/x", "/usr/bin/")),
        ({"from": "a", "src": "./", "dest": "/d/"}, ("f",), ("", "/d/")),
        ({"from": "a", "dest": "/d"}, None, ("", "/d")),
    ],
)
def test_copy_source_matches_oci_backend(
    spec: dict[str, Any], files: tuple[str, ...] | None, expected: tuple[str, str]
) -> None:
    assert copy_source(CopySpec.model_validate(spec), files) == expected


def test_copy_source_names_a_missing_output() -> None:
    with pytest.raises(RecipeError, match="no output 'nope'"):
        copy_source(CopySpec.model_validate({"from": "a", "src": "nope"}), ("x",))


def test_shell_steps_cannot_compile_in_a_container() -> None:
    r = recipe(STEPS)
    with pytest.raises(RecipeError, match="cannot compile in a container"):
        compile_stage("docs", r.steps["docs"], PLATFORMS, image="x")


def test_c_in_container_needs_outputs() -> None:
    r = recipe({"c": {"kind": "c", "src": "c", "build": ["make"]}})
    with pytest.raises(RecipeError, match="needs `outputs`"):
        compile_stage("c", r.steps["c"], PLATFORMS, image="x")


def test_metadata_is_escaped() -> None:
    text = render(_spec())
    assert 'ENV GREETING="say \\"hi\\" for \\$USER"' in text
    assert 'ENTRYPOINT ["/usr/local/bin/hello-go"]' in text
    assert "COPY --chmod=0755 out/${TARGETARCH}${TARGETVARIANT}/hello-c/hello-c " \
           "/usr/local/bin/hello-c" in text
