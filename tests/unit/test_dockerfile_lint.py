"""The lint: no RUN on the target platform unless the step says emulate = true."""

from __future__ import annotations

import pytest

from crossplan.backends.dockerfile import EMULATION_COST, lint
from crossplan.platforms import parse_platforms

CROSS = """\
FROM --platform=$BUILDPLATFORM golang AS build-hello
RUN go build -o /out/hello .
FROM build-hello AS more
RUN echo still on the build platform
FROM scratch
COPY --from=build-hello /out/hello /hello
"""

NAIVE = """\
# a comment
FROM golang AS build-hello
RUN go build \\
    -o /out/hello .
FROM --platform=${BUILDPLATFORM} golang AS build-tool
RUN echo fine
FROM alpine
RUN apk add curl
"""


def test_cross_compiled_dockerfile_is_clean() -> None:
    assert lint(CROSS, image_step="image") == []


def test_naive_dockerfile_names_each_step_and_line() -> None:
    found = lint(NAIVE, image_step="image")
    assert [(f.step, f.line, f.stage, f.severity) for f in found] == [
        ("hello", 3, "build-hello", "warning"),
        ("image", 8, "stage-2", "warning"),
    ]
    msg = found[0].message(parse_platforms("linux/arm64"))
    assert "step 'hello'" in msg and "linux/arm64" in msg and EMULATION_COST in msg
    assert "emulate = true" in msg


def test_emulate_true_turns_the_warning_into_a_note() -> None:
    found = lint(NAIVE, image_step="image", emulate_ok=frozenset({"hello"}))
    assert found[0].severity == "note"
    assert "emulate = true" in found[0].message() and EMULATION_COST in found[0].message()


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("FROM --platform=$TARGETPLATFORM x AS build-a\nRUN true\n", 1),
        ("FROM --platform=$BUILDPLATFORM x AS base\nFROM base AS build-a\nRUN true\n", 0),
        ("FROM x AS base\nFROM --platform=$BUILDPLATFORM base AS build-a\nRUN true\n", 0),
        ("from x as build-a\nrun true\n", 1),
    ],
)
def test_stage_platforms(text: str, count: int) -> None:
    assert len(lint(text, image_step="image")) == count
