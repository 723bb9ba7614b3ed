"""Per-field recipe rules: pure checks raising ``Violation`` (a ValueError, so pydantic keeps
the field's location and the loader can name the file, line and step)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

import pathspec

from crossplan.errors import RecipeError
from crossplan.imageref import parse_tag_reference

__all__ = [
    "MAX_COMPONENT",
    "MAX_PATH",
    "Violation",
    "command",
    "copy_dest",
    "copy_mode",
    "copy_src",
    "env",
    "exclude",
    "image_tags",
    "one_argv",
    "output",
    "path_length",
    "platforms",
    "relative",
    "show",
    "src",
    "step_ids",
    "strings",
]

MAX_COMPONENT = 255  # bytes in one path component (NAME_MAX)
MAX_PATH = 4096  # bytes in a whole path (PATH_MAX)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PLAIN_MODE, _SPECIAL_MODE = 0o777, 0o7777


class Violation(ValueError):
    """One broken rule: what is wrong (never a secret's value) and what to do; ``field``
    names the field when the check ran on the whole table (for the line number)."""

    def __init__(self, message: str, hint: str, *, field: str | None = None) -> None:
        self.message = message
        self.hint = hint
        self.field = field
        super().__init__(message)


def show(text: str, limit: int = 60) -> str:
    """A value quoted for a message: control characters escaped, long values cut."""
    cut = text if len(text) <= limit else text[: limit - 12] + "..."
    body = repr(cut)[1:-1] if not cut.isprintable() or "'" in cut else cut
    more = f" ({len(text)} characters)" if cut is not text else ""
    return f"'{body}'{more}"


def strings(table: Any, tables: Iterable[str] = ()) -> None:
    """No NUL and no lone surrogate in any string of a table's raw fields (keys included).
    Nested tables are models that check their own fields: the fields named in ``tables``
    and dicts below a field are skipped."""
    if not isinstance(table, dict):
        return
    for name, value in table.items():
        if isinstance(name, str) and name not in tables:
            try:
                _strings(value, name, top=True)
            except Violation as exc:
                raise Violation(exc.message, exc.hint, field=name) from None


def _strings(value: Any, where: str, *, top: bool) -> None:
    if isinstance(value, str):
        _string(value, where)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            if not isinstance(item, dict):
                _strings(item, f"{where}[{i}]", top=False)
    elif isinstance(value, dict) and top:
        for key, item in value.items():
            if isinstance(key, str):
                _string(key, f"{where} key {show(key)}")
            if not isinstance(item, dict):
                _strings(item, f"{where}[{show(str(key))}]", top=False)


def _string(text: str, where: str) -> None:
    if "\0" in text:
        raise Violation(f"{where} contains a NUL byte", "remove the \\0 (NUL) character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise Violation(f"{where} is not valid Unicode (a lone surrogate)",
                        "write it as UTF-8 text") from None


def path_length(path: str, what: str) -> str:
    """A component over 255 bytes or a path over 4096 bytes cannot exist on the host."""
    size = len(path.encode("utf-8", "surrogatepass"))
    if size > MAX_PATH:
        raise Violation(f"{what} {show(path)} is too long ({size} bytes, over {MAX_PATH})",
                        "use a shorter path")
    for part in path.split("/"):
        if len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT:
            raise Violation(
                f"{what} {show(path)} has a path component over {MAX_COMPONENT} bytes",
                f"file and directory names are at most {MAX_COMPONENT} bytes",
            )
    return path


def relative(path: str, what: str) -> None:
    """A path relative to plan.toml that stays inside the project."""
    pp = PurePosixPath(path)
    if pp.is_absolute() or path.startswith("~"):
        raise Violation(f"{what} path '{path}' is absolute", "paths are relative to plan.toml")
    if ".." in pp.parts:
        raise Violation(f"{what} path '{path}' escapes the project (..)",
                        "keep inputs and outputs inside the directory holding plan.toml")


def src(path: str) -> str:
    if not path:
        raise Violation("src is empty", 'use "." for the directory holding plan.toml')
    path_length(path, "src")
    relative(path, "src")
    return path


def output(path: str) -> str:
    """An output names something the step writes inside its work dir: not the work dir."""
    path_length(path, "output")
    if not path:
        raise Violation("output path '' is empty",
                        "name a file or directory the step writes, relative to its work dir")
    relative(path, "output")
    if PurePosixPath(path) == PurePosixPath("."):
        raise Violation(
            f"output path {show(path)} is the whole work dir",
            "list the files or directories the step makes (the work dir also holds its "
            "inputs, deps and logs)",
        )
    return path


def command(value: Any, what: str, *, line: bool = False) -> tuple[str, ...]:
    """A command in one of three forms, as ONE argv (so the plain argv form dumps, and keys,
    exactly as before): a string is a shell script (``sh -ec``: a multi-line string stops at
    the first failing line); a list of strings is one argv; a list of lists is several argv
    run in order (one: that argv; several: a ``sh -ec`` script of the quoted argv, stopping at
    the first failure). ``line``: a one-string list is a shell line (the C ``build`` field)."""
    if isinstance(value, str):
        if not value.strip():
            raise Violation(f"{what} is empty", f'give a command, e.g. {what} = "make all"')
        return ("sh", "-ec", value)
    items = tuple(value)
    if items and all(isinstance(i, (list, tuple)) for i in items):
        argvs = [_argv(tuple(i), what) for i in items]
        if len(argvs) == 1:
            return argvs[0]
        return ("sh", "-ec", "\n".join(shlex.join(a) for a in argvs))
    if any(isinstance(i, (list, tuple)) for i in items):
        raise Violation(f"{what} mixes strings and lists",
                        f'write one argv ({what} = ["make", "all"]) or a list of argv '
                        f'({what} = [["make"], ["make", "install"]])')
    argv = _argv(items, what)
    if not line:  # the C ``build`` is checked when lowered (a compile stage reads lines)
        one_argv(argv, what)
    return argv


def _argv(argv: tuple[str, ...], what: str) -> tuple[str, ...]:
    if not argv:
        raise Violation(f"{what} is empty",
                        f'give the program and its arguments, e.g. {what} = ["make", "all"]')
    if not all(isinstance(a, str) for a in argv):
        raise Violation(f"{what} holds a value that is not a string",
                        f'write every argument as a string, e.g. {what} = ["make", "-j", "4"]')
    if not argv[0]:
        raise Violation(f"{what}'s program (its first item) is empty",
                        f'give the program first, e.g. {what} = ["sh", "-c", "..."]')
    return argv


def one_argv(argv: tuple[str, ...], what: str) -> None:
    """``["cmake -S . -B build", "cmake --build build"]`` is one argv whose program name has
    spaces: no such program exists; say which form was meant."""
    prog = argv[0]
    if "/" not in prog and any(c.isspace() for c in prog):
        raise Violation(
            f"program not found: {show(prog)} \u2014 a list of strings is ONE command's argv; "
            "for several commands use a list of lists or a multi-line string",
            f'e.g. {what} = [["cmake", "-S", ".", "-B", "build"], ["cmake", "--build", "build"]]'
            f' or {what} = """\ncmake -S . -B build\ncmake --build build\n"""',
        )


def env(mapping: Mapping[str, str]) -> Mapping[str, str]:
    """POSIX names (letters, digits, _; not starting with a digit); no NUL in values."""
    for name, value in mapping.items():
        if not _ENV_NAME.fullmatch(name):
            raise Violation(
                f"env name {show(name)} is not a valid variable name",
                "names are letters, digits and _ and do not start with a digit (POSIX); "
                "no '=', spaces or NUL",
            )
        if "\0" in value:
            raise Violation(f"env value of {name} contains a NUL byte",
                            "remove the \\0 (NUL) character")
    return mapping


def exclude(patterns: tuple[str, ...]) -> tuple[str, ...]:
    for pat in patterns:
        try:
            pathspec.PathSpec.from_lines("gitignore", [pat])
        except ValueError:
            raise Violation(
                f"exclude pattern {show(pat)} is not a valid gitignore pattern",
                'patterns follow .gitignore syntax, e.g. "*.log", "build/", "!keep.txt"',
            ) from None
    return patterns


def platforms(value: tuple[str, ...] | None) -> tuple[str, ...] | None:
    if value is not None and not value:
        raise Violation(
            "platforms is empty",
            'list at least one, e.g. platforms = ["linux/amd64"] (a step without '
            "`platforms` builds for the project's)",
        )
    return value


def copy_src(path: str) -> str:
    path_length(path, "copy.src")
    relative(path, "copy.src")
    return path


def copy_dest(dest: str) -> str:
    path_length(dest, "copy dest")
    if not dest.startswith("/"):
        raise Violation(f"copy dest {show(dest)} must be an absolute path in the image",
                        'write where it goes in the image, e.g. dest = "/usr/local/bin/"')
    if ".." in PurePosixPath(dest).parts:
        raise Violation(f"copy dest {show(dest)} escapes the image root (..)",
                        "write the destination as an absolute path without '..'")
    return dest


def copy_mode(mode: int | None, allow_special_bits: bool) -> int | None:
    top = _SPECIAL_MODE if allow_special_bits else _PLAIN_MODE
    if mode is not None and not 0 <= mode <= top:
        hint = ("write it in octal, e.g. mode = 0o4755" if allow_special_bits else
                "write it in octal, e.g. mode = 0o755; setuid, setgid and sticky bits "
                "(up to 0o7777) need allow_special_bits = true")
        raise Violation(f"copy mode {mode} is out of range (0 to {oct(top)})", hint)
    return mode


def image_tags(tags: tuple[str, ...]) -> tuple[str, ...]:
    for tag in tags:
        try:
            parse_tag_reference(tag)
        except RecipeError as exc:
            raise Violation(exc.message, exc.hint or "") from None
    return tags


def step_ids(ids: Iterable[str]) -> None:
    """Step ids name directories (``deps/<id>/``, logs): each part fits in a file name."""
    for sid in ids:
        path_length(sid, "step id")
