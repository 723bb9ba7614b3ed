"""An image step's identity (images/pin.py) is one structure written as canonical JSON: the
backends write it, and what reads it back (the oci build's base pin, the no-op memo,
`plan affected`) reads fields, not a string's shape."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from crossplan.cli.noop_record import _daemonless
from crossplan.images.oci import _pinned, oci_pin
from crossplan.images.pin import base_pin, identity_fields, image_identity
from crossplan.platforms import Platform
from crossplan.recipes import load
from crossplan.recipes.models import ImageStep

DIGEST = "sha256:" + "ab" * 32


def test_the_identity_is_the_same_whatever_order_the_fields_come_in() -> None:
    one = image_identity(backend="oci", base="scratch", layers="gzip")
    other = image_identity(layers="gzip", base="scratch", backend="oci")
    assert one == other
    assert identity_fields(one) == {"backend": "oci", "base": "scratch", "layers": "gzip"}


@pytest.mark.parametrize("identity", [
    None, "", "go1.27.3 linux/amd64", "base=scratch;layers=gzip", "{not json", "[1, 2]",
])
def test_anything_but_an_image_identity_has_no_fields(identity: str | None) -> None:
    assert identity_fields(identity) == {}
    assert base_pin(identity) == ""


def test_oci_pin_of_a_scratch_image_names_its_base_and_labels(tmp_path: Path) -> None:
    (tmp_path / "plan.toml").write_text(
        '[project]\nname = "p"\nrevision = "abc"\n[steps.image]\nkind = "image"\n'
        'base = "scratch"\n')
    recipe = load(tmp_path / "plan.toml")
    step = recipe.steps["image"]
    assert isinstance(step, ImageStep)
    pin = oci_pin(recipe, "image", step, (Platform.parse("linux/amd64"),))
    fields = identity_fields(pin)
    assert fields["backend"] == "oci"
    assert fields["base"] == "scratch"
    assert fields["revision"] == "abc"
    assert isinstance(fields["layers"], str) and fields["layers"]


@pytest.mark.parametrize(("base", "want"), [
    (f"localhost:5000/demo/base@{DIGEST}", f"localhost:5000/demo/base@{DIGEST}"),
    ("scratch", None),
    (f"localhost:5000/a@{DIGEST},localhost:5000/b@{DIGEST}", None),  # not one index
    ("engine:sha256:1234", None),
])
def test_the_oci_build_uses_the_base_pin_the_key_names(base: str, want: str | None) -> None:
    node = SimpleNamespace(components={"toolchain": image_identity(backend="oci", base=base)})
    assert _pinned(node) == want  # type: ignore[arg-type]


@pytest.mark.parametrize(("identity", "replayable"), [
    (image_identity(backend="oci", base="scratch", layers="gzip"), True),
    (image_identity(backend="oci", base=f"localhost:5000/demo/base@{DIGEST}"), True),
    (image_identity(backend="buildx", base="scratch", compile="host"), False),
    ("base=scratch;layers=gzip;revision=;source=", False),  # another version's identity
    (None, False),
])
def test_only_a_daemonless_image_is_replayed(identity: str | None, replayable: bool) -> None:
    assert _daemonless(identity) is replayable
