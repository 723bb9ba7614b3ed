"""Every recipe field validated at load time: a table of each rule (message, step, line),
then property-based tests corrupting one field of a valid recipe at a time (and junk of every
kind) that must end in a RecipeError, never in another exception."""

from __future__ import annotations

import contextlib
import copy
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crossplan.errors import EXIT_USAGE, RecipeError
from crossplan.recipes import ImageStep, Recipe, from_dict, load_text

FILE = Path("/nonexistent/crossplan-fuzz/plan.toml")  # never read: no workspace members
FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

BASE: dict[str, Any] = {
    "project": {"name": "fuzz", "platforms": ["linux/amd64", "linux/arm64"],
                "source_date_epoch": 0, "description": "a fuzzed recipe"},
    "cache": {"signing_key": "keys/ci-1.key", "trusted_keys": ["keys/ci-1.pub"]},
    "steps": {
        "gen": {"kind": "shell", "src": "gen/", "command": ["sh", "-c", "echo hi > out.txt"],
                "outputs": ["out.txt"], "env": {"FOO": "1", "_B2": ""}, "exclude": ["*.log"],
                "platforms": ["linux/amd64"], "description": "make a file"},
        "app": {"kind": "c", "src": "c/", "build": ["make", "app"], "outputs": ["app"]},
        "img": {"kind": "image", "base": "scratch",
                "copy": [{"from": "gen", "src": "out.txt", "dest": "/srv/", "mode": 0o644},
                         {"from": "app", "dest": "/usr/local/bin/"}],
                "tags": ["localhost:5000/fuzz/app:1.0", "ghcr.io/o/app", "[::1]:5000/a:b_1"],
                "entrypoint": ["/usr/local/bin/app"], "workdir": "/srv",
                "env": {"PATH": "/usr/local/bin"}, "labels": {"org.example": "x"}},
    },
}


def _with(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    """BASE with the value at ``path`` (keys and list indexes) replaced."""
    data = copy.deepcopy(BASE)
    node: Any = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


def _rejected(data: dict[str, Any]) -> RecipeError:
    with pytest.raises(RecipeError) as info:
        from_dict(data, file=FILE)
    assert info.value.exit_code == EXIT_USAGE
    assert info.value.file == str(FILE)
    assert info.value.hint
    return info.value


def test_the_base_recipe_is_valid() -> None:
    recipe = from_dict(copy.deepcopy(BASE), file=FILE)
    assert set(recipe.steps) == {"gen", "app", "img"}


# --- each rule: message and step -------------------------------------------------------

GEN, IMG = ("steps", "gen"), ("steps", "img")

RULES: list[tuple[tuple[Any, ...], Any, str | None, str]] = [
    # (path, bad value, step named, message fragment)
    ((*GEN, "command"), [], "gen", "command is empty"),
    ((*GEN, "command"), ["", "x"], "gen", "program (its first item) is empty"),
    (("steps", "app", "build"), [], "app", "build is empty"),
    ((*GEN, "env"), {"A=B": "1"}, "gen", "env name 'A=B' is not a valid variable name"),
    ((*GEN, "env"), {"1A": "1"}, "gen", "not a valid variable name"),
    ((*GEN, "env"), {"": "1"}, "gen", "not a valid variable name"),
    ((*GEN, "env"), {"A\0": "1"}, "gen", "NUL"),
    ((*GEN, "env"), {"A": "x\0y"}, "gen", "NUL"),
    ((*GEN, "src"), "gen\0", "gen", "src contains a NUL byte"),
    ((*GEN, "src"), "a" * 100_000, "gen", "is too long"),
    ((*GEN, "src"), "d/" + "a" * 256, "gen", "path component over 255 bytes"),
    ((*GEN, "src"), "", "gen", "src is empty"),
    ((*GEN, "exclude"), ["!"], "gen", "exclude pattern '!' is not a valid gitignore pattern"),
    ((*GEN, "exclude"), ["dir\\"], "gen", "not a valid gitignore pattern"),
    ((*IMG, "copy", 0, "mode"), -1, "img", "copy mode -1 is out of range (0 to 0o777)"),
    ((*IMG, "copy", 0, "mode"), 0o4755, "img", "out of range (0 to 0o777)"),
    ((*IMG, "copy", 0, "mode"), 99999999, "img", "out of range"),
    ((*IMG, "copy", 0), {"from": "gen", "mode": 0o17777, "allow_special_bits": True}, "img",
     "out of range (0 to 0o7777)"),
    ((*IMG, "copy", 0, "dest"), "/srv/../../etc", "img", "escapes the image root (..)"),
    ((*IMG, "copy", 0, "dest"), "srv/", "img", "must be an absolute path in the image"),
    ((*IMG, "tags"), ["localhost:5000/app:1 0"], "img", "is not an image reference"),
    ((*IMG, "tags"), [""], "img", "image tag '' is not an image reference"),
    ((*IMG, "tags"), ["::"], "img", "image tag '::'"),
    ((*IMG, "tags"), ["localhost:5000/App:1"], "img", "bad repository"),
    ((*IMG, "tags"), ["x:" + "a" * 129], "img", "bad tag"),
    ((*IMG, "tags"), ["bad_host:5000/app:1"], "img", "bad registry host"),
    ((*IMG, "tags"), ["app@sha256:" + "a" * 64], "img", "has a digest"),
    ((*GEN, "outputs"), ["."], "gen", "output path '.' is the whole work dir"),
    ((*GEN, "outputs"), ["./"], "gen", "is the whole work dir"),
    ((*GEN, "outputs"), [""], "gen", "output path '' is empty"),
    ((*GEN, "outputs"), ["/tmp/x"], "gen", "output path '/tmp/x' is absolute"),
    ((*GEN, "outputs"), ["a/../../x"], "gen", "escapes the project (..)"),
    ((*GEN, "platforms"), [], "gen", "platforms is empty"),
    (("project", "platforms"), [], None, "platforms is empty"),
    (("project", "name"), "x\0", None, "name contains a NUL byte"),
    (("cache", "signing_key"), "k/" + "x" * 300, None, "over 255 bytes"),
    (("steps",), {"gen\0": BASE["steps"]["gen"]}, None, "steps key 'gen\\x00' contains a NUL"),
    (("steps",), {"s" * 300: BASE["steps"]["app"]}, None, "step id"),
    ((*GEN, "description"), "\ud800", "gen", "lone surrogate"),
]


@pytest.mark.parametrize(("path", "value", "step", "fragment"), RULES,
                         ids=[f"{'.'.join(map(str, r[0][-2:]))}={str(r[1])[:20]!r}" for r in RULES])
def test_each_rule_is_a_recipe_error(
    path: tuple[Any, ...], value: Any, step: str | None, fragment: str
) -> None:
    exc = _rejected(_with(path, value))
    assert fragment in exc.message
    assert exc.step == step
    assert "Traceback" not in str(exc) and len(str(exc)) < 1000


def test_special_bits_are_allowed_when_asked() -> None:
    spec = {"from": "gen", "dest": "/srv/x", "mode": 0o4755, "allow_special_bits": True}
    img = from_dict(_with((*IMG, "copy", 0), spec), file=FILE).steps["img"]
    assert isinstance(img, ImageStep) and img.copy_[0].mode == 0o4755


def test_allow_special_bits_false_stays_out_of_the_key_fields() -> None:
    img = from_dict(copy.deepcopy(BASE), file=FILE).steps["img"]
    assert isinstance(img, ImageStep)
    assert "allow_special_bits" not in img.model_dump(by_alias=True)["copy"][0]


HEAD = '[project]\nname = "x"\nplatforms = ["linux/amd64"]\n\n'
TEXTS: list[tuple[str, str, int]] = [
    # (plan.toml body, message fragment, line)
    ('[steps.a]\nkind = "shell"\nsrc = "."\ncommand = []\n', "command is empty", 8),
    ('[steps.a]\nkind = "shell"\nsrc = "."\ncommand = ["true"]\nenv = { "A=B" = "1" }\n',
     "env name", 9),
    ('[steps.a]\nkind = "shell"\nsrc = "."\ncommand = ["true"]\n\n[steps.a.env]\n"X Y" = "1"\n',
     "env name", 10),
    ('[steps.a]\nkind = "shell"\nsrc = "a\\u0000"\ncommand = ["true"]\n', "NUL", 7),
    ('[steps.a]\nkind = "shell"\nsrc = "."\ncommand = ["true"]\nexclude = ["!"]\n', "gitignore", 9),
    ('[steps.a]\nkind = "shell"\nsrc = "."\ncommand = ["true"]\noutputs = ["."]\n', "work dir", 9),
    ('[steps.i]\nkind = "image"\ncopy = [{ from = "i", dest = "/" },\n'
     '        { from = "i", dest = "/x", mode = -1 }]\n', "copy mode -1", 8),
    ('[steps.i]\nkind = "image"\n\n[[steps.i.copy]]\nfrom = "i"\ndest = "/a/../.."\n',
     "escapes the image root", 10),
    ('[steps.i]\nkind = "image"\ntags = ["a b"]\n', "image tag 'a b'", 7),
]


@pytest.mark.parametrize(("body", "fragment", "line"), TEXTS)
def test_rule_errors_name_the_line(body: str, fragment: str, line: int) -> None:
    with pytest.raises(RecipeError) as info:
        load_text(HEAD + body, file=FILE)
    assert fragment in info.value.message
    assert info.value.line == line, str(info.value)
    assert str(info.value).startswith(f"{FILE}:{line}: step '")


def test_project_rule_errors_name_the_line() -> None:
    with pytest.raises(RecipeError) as info:
        load_text('[project]\nname = "x"\nplatforms = []\n', file=FILE)
    assert info.value.line == 3 and "platforms is empty" in info.value.message


# --- property-based: one field corrupted at a time --------------------------------------

ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _strings(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every string value in BASE (``kind`` aside: it picks the model)."""
    if isinstance(node, str):
        return [path] if path[-1] != "kind" else []
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _strings(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _strings(v, (*path, i))]
    return []


STRING_PATHS = _strings(BASE)
PATH_FIELDS = [(*GEN, "src"), (*GEN, "outputs", 0), (*IMG, "copy", 0, "src"),
               (*IMG, "copy", 0, "dest"), (*IMG, "workdir"), ("cache", "signing_key"),
               ("cache", "trusted_keys", 0), ("steps", "app", "src")]


@st.composite
def nul_anywhere(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from(STRING_PATHS))
    node: Any = BASE
    for key in path:
        node = node[key]
    at = draw(st.integers(0, len(node)))
    return _with(path, node[:at] + "\0" + node[at:])


@st.composite
def too_long_path(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from(PATH_FIELDS))
    char = draw(st.sampled_from(["a", "é", "語", "😀"]))
    prefix = "/" if path[-1] in ("dest", "workdir") else ""
    long_part = char * draw(st.integers(256 // len(char.encode()) + 1, 2000))
    many = "/".join(["d" * 200] * draw(st.integers(21, 60)))  # over 4096 bytes in all
    return _with(path, prefix + draw(st.sampled_from([long_part, many, "x/" + long_part])))


bad_env_name = st.text(min_size=0, max_size=30).filter(lambda s: not ENV_NAME.fullmatch(s))
invalid_gitignore = st.one_of(
    st.just("!"),
    st.text(alphabet="ab*?/[]!", max_size=10).map(lambda s: s.replace("\\", "") + "\\"),
)
bad_mode = st.one_of(st.integers(max_value=-1), st.integers(min_value=0o1000))
bad_tag = st.one_of(
    st.sampled_from(["", "::", ":", "/", "a//b", "a:", "localhost:5000/", "UPPER/app",
                     "host:99999/a", "-a", "a:-x", "a:.x", "a@sha256:" + "0" * 64]),
    st.builds(lambda w, at: "localhost:5000/app:1.0"[:at] + w + "localhost:5000/app:1.0"[at:],
              st.sampled_from([" ", "\t", "\n", "\u00a0", "\u3000"]), st.integers(0, 22)),
    st.text(min_size=129, max_size=200, alphabet="abc").map(lambda t: "app:" + t),
    st.text(alphabet=st.characters(min_codepoint=0x80), min_size=1, max_size=8)
    .map(lambda t: "app:" + t),
)
bad_output = st.one_of(
    st.sampled_from([".", "", "./", "./.", "/", "..", "../x", "a/../../x", "/abs", "~/x"]),
    st.text(alphabet="ab/", max_size=8).map(lambda t: "/" + t),
)
bad_dest = st.one_of(
    st.sampled_from(["", "relative", "./x", "/..", "/a/../..", "/x/../y"]),
    st.text(alphabet="ab/.", max_size=8).map(lambda t: "/" + t + "/../"),
)


@st.composite
def one_rule_broken(draw: st.DrawFn) -> dict[str, Any]:
    rule = draw(st.sampled_from(["command", "env name", "env value", "nul", "long path",
                                 "exclude", "mode", "special mode", "tag", "output", "src",
                                 "platforms", "dest"]))
    if rule == "command":
        return _with((*GEN, "command"), draw(st.sampled_from([[], [""], ["", "-c"]])))
    if rule == "env name":
        return _with((*GEN, "env"), {draw(bad_env_name): "1"})
    if rule == "env value":
        value = draw(st.text(max_size=10))
        return _with((*IMG, "env", "PATH"), value + "\0" + value)
    if rule == "nul":
        return draw(nul_anywhere())
    if rule == "long path":
        return draw(too_long_path())
    if rule == "exclude":
        return _with((*GEN, "exclude"), ["*.o", draw(invalid_gitignore)])
    if rule == "mode":
        return _with((*IMG, "copy", 1, "mode"), draw(bad_mode))
    if rule == "special mode":
        mode = draw(st.one_of(st.integers(max_value=-1), st.integers(min_value=0o10000)))
        return _with((*IMG, "copy", 1), {"from": "app", "dest": "/x", "mode": mode,
                                         "allow_special_bits": True})
    if rule == "tag":
        return _with((*IMG, "tags"), ["localhost:5000/fuzz/app:1.0", draw(bad_tag)])
    if rule == "output":
        return _with((*draw(st.sampled_from([GEN, ("steps", "app")])), "outputs"),
                     [draw(bad_output)])
    if rule == "src":
        return _with((*GEN, "src"), draw(st.sampled_from(["", "/etc", "../x", "~/x"])))
    if rule == "platforms":
        return _with(draw(st.sampled_from([("project", "platforms"), (*GEN, "platforms")])), [])
    return _with((*IMG, "copy", 0, "dest"), draw(bad_dest))


@FUZZ
@given(one_rule_broken())
def test_one_broken_rule_is_always_a_recipe_error(data: dict[str, Any]) -> None:
    with pytest.raises(RecipeError) as info:
        from_dict(data, file=FILE)
    assert info.value.exit_code == EXIT_USAGE and info.value.file == str(FILE)
    str(info.value).encode("utf-8")  # printable on any terminal: no lone surrogate


# Where junk goes, and junk of a type that field never accepts.
TYPED_FIELDS: dict[tuple[Any, ...], str] = {
    ("project",): "table", ("project", "name"): "str", ("project", "platforms"): "list",
    ("project", "source_date_epoch"): "int", ("steps",): "table", (*GEN,): "table",
    (*GEN, "src"): "str", (*GEN, "command"): "command", (*GEN, "env"): "table",
    (*GEN, "outputs"): "list", (*GEN, "exclude"): "list", (*GEN, "deps"): "list",
    (*GEN, "platform_independent"): "bool", (*IMG, "copy"): "list", (*IMG, "copy", 0): "table",
    (*IMG, "copy", 0, "mode"): "int", (*IMG, "copy", 0, "dest"): "str", (*IMG, "tags"): "list",
    (*IMG, "labels"): "table", (*IMG, "backend"): "str", ("cache",): "table",
    ("cache", "trusted_keys"): "list", ("steps", "app", "compiler"): "str",
}
scalars = st.one_of(st.integers(), st.floats(allow_nan=True), st.booleans(), st.none())
junk_for = {
    "str": st.one_of(st.integers(), st.floats(), st.booleans(), st.lists(st.integers()),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)),
    "list": st.one_of(st.integers(), st.floats(), st.booleans(), st.text(),
                      st.lists(st.one_of(st.integers(), st.floats(), st.lists(st.none())),
                               min_size=1, max_size=3)),
    # a string is a command too (a sh -ec script): junk is neither text nor a list of them
    "command": st.one_of(st.integers(), st.floats(), st.booleans(),
                         st.lists(st.one_of(st.integers(), st.floats(), st.lists(st.none())),
                                  min_size=1, max_size=3)),
    "table": st.one_of(st.integers(), st.text(), st.lists(st.integers(), max_size=3),
                       st.floats()),
    "int": st.one_of(st.text(alphabet="xyz", min_size=1), st.lists(st.integers(), max_size=2),
                     st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
                     st.floats(allow_nan=True).filter(lambda f: not f.is_integer())),
    "bool": st.one_of(st.floats(min_value=2), st.lists(st.booleans(), max_size=2),
                      st.text(alphabet="xz", min_size=1)),  # not "y", "yes", "no"..., lax bools
}


@st.composite
def wrong_type(draw: st.DrawFn) -> dict[str, Any]:
    path = draw(st.sampled_from(sorted(TYPED_FIELDS, key=str)))
    return _with(path, draw(junk_for[TYPED_FIELDS[path]]))


@FUZZ
@given(wrong_type())
def test_a_value_of_the_wrong_type_is_a_recipe_error(data: dict[str, Any]) -> None:
    with pytest.raises(RecipeError):
        from_dict(data, file=FILE)


unicode_junk = st.one_of(
    st.text(min_size=0, max_size=50),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=300, max_size=3000),
    st.text(alphabet=st.characters(blacklist_categories=()), max_size=30),  # surrogates too
)
anything = st.recursive(
    st.one_of(scalars, unicode_junk),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=8,
)


@FUZZ
@given(st.sampled_from(sorted(TYPED_FIELDS, key=str) + STRING_PATHS), anything)
def test_any_junk_anywhere_loads_or_is_a_recipe_error(path: tuple[Any, ...], junk: Any) -> None:
    try:
        recipe = from_dict(_with(path, junk), file=FILE)
    except RecipeError as exc:
        assert exc.exit_code == EXIT_USAGE
    else:
        assert isinstance(recipe, Recipe)


@FUZZ
@given(st.text(max_size=400))
def test_any_text_loads_or_is_a_recipe_error(text: str) -> None:
    with contextlib.suppress(RecipeError):
        load_text(HEAD + text, file=FILE)
