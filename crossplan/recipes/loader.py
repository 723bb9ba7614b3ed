"""Read plan.toml into a Recipe, turning TOML and schema errors into RecipeErrors with lines.

``load`` keeps a memo of validated recipes (``<store>/recipes/``, the store being
``CROSSPLAN_CACHE_DIR`` or ``$XDG_CACHE_HOME/crossplan``): a pickle of the frozen Recipe keyed
by the root plan.toml's path and bytes (and the recipe code's own files), holding the
digests of the workspace members' plan.toml it was made from. A hit re-expands the member
globs and re-reads their bytes; any difference, or any error, is the slow path. Errors are
never memoised. ``CROSSPLAN_RECIPE_MEMO=off`` turns it off."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import os
import pickle
import re
import sys
import tempfile
import threading
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from crossplan.errors import RecipeError
from crossplan.recipes.members import MemberSource, expand_members, merge_members
from crossplan.recipes.models import Recipe
from crossplan.recipes.rules import Violation
from crossplan.recipes.validate import validate_recipe

__all__ = ["find_recipe", "from_dict", "load", "load_text"]

_KINDS = "go | rust | c | shell | image"


def load(path: str | Path) -> Recipe:
    """Load and validate ``plan.toml`` (or a directory holding one), with its workspace members."""
    p = Path(path)
    try:
        if p.is_dir():
            p = p / "plan.toml"
        found = p.is_file()
    except OSError:  # e.g. a name too long
        found = False
    if not found:
        raise RecipeError(
            f"no recipe at {p}",
            hint="create a plan.toml or pass its path: `plan run path/to/plan.toml`",
        )
    file = p.resolve()
    text = _read(p)
    key = _memo_key(file, text)
    if key is not None:
        hit = _memo_get(key)
        if hit is not None:
            return hit
    seen: dict[str, str] = {}
    token = _SEEN.set(seen)
    try:
        recipe = load_text(text, file=file)
    finally:
        _SEEN.reset(token)
    if key is not None:  # written once the recipe has also planned: see ``remember``
        with _PENDING_LOCK:
            while len(_PENDING) >= 32:  # loaded but never planned: forget the oldest
                del _PENDING[next(iter(_PENDING))]
            _PENDING[id(recipe)] = (key, recipe, seen)
    return recipe


_PENDING: dict[int, tuple[Path, Recipe, dict[str, str]]] = {}
_PENDING_LOCK = threading.Lock()


def remember(recipe: Recipe) -> None:
    """Write the memo of a recipe ``load`` validated, now that it also planned: a recipe
    that fails later (a cycle, a missing src) leaves nothing on disk."""
    with _PENDING_LOCK:
        pending = _PENDING.pop(id(recipe), None)
    if pending is not None and pending[1] is recipe:
        _memo_put(*pending)


# -- the memo of validated recipes --------------------------------------------------------
_MEMO_FORMAT = b"crossplan-recipe-memo-1\n"
# The member plan.toml files a load read: resolved path -> sha256 of their text.
_SEEN: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "crossplan_recipe_reads", default=None)


def _memo_dir() -> Path | None:
    env = os.environ
    if env.get("CROSSPLAN_RECIPE_MEMO", "").lower() in ("0", "off", "no", "false"):
        return None
    if env.get("CROSSPLAN_CACHE_DIR"):
        return Path(env["CROSSPLAN_CACHE_DIR"]) / "recipes"
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "crossplan" / "recipes"


def _memo_key(file: Path, text: str) -> Path | None:
    """Where the memo of this plan.toml (path and bytes) lives; None: no memo."""
    d = _memo_dir()
    if d is None:
        return None
    h = hashlib.sha256(_MEMO_FORMAT)
    h.update(f"{sys.version}\0{file}\0".encode())
    here = Path(__file__).parent  # the recipe code itself: a changed model is a miss
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            st = (here / name).stat()
            h.update(f"{name}:{st.st_mtime_ns}:{st.st_size}\0".encode())
    h.update(text.encode("utf-8"))
    return d / f"{h.hexdigest()}.pickle"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _members_now(recipe: Recipe) -> dict[str, str] | None:
    """The member plan.toml files ``recipe``'s globs name now, with their digests."""
    if recipe.workspace is None or not recipe.workspace.members:
        return {}
    root = recipe.root
    now = {}
    for rel in expand_members(root, recipe.workspace.members, recipe.label):
        mfile = (root / rel / "plan.toml").resolve()
        now[str(mfile)] = _digest(mfile.read_text(encoding="utf-8"))
    return now


def _memo_get(key: Path) -> Recipe | None:
    try:
        data = key.read_bytes()
        if not data.startswith(_MEMO_FORMAT):
            return None
        recipe, members = pickle.loads(data[len(_MEMO_FORMAT):])  # our own store, as trusted as it
        if not isinstance(recipe, Recipe) or _members_now(recipe) != members:
            return None
        return recipe
    except Exception:  # a memo that does not load is a miss
        return None


def _memo_put(key: Path, recipe: Recipe, seen: dict[str, str]) -> None:
    with contextlib.suppress(Exception):
        if _members_now(recipe) != seen:  # a member changed while it was being read
            return
        key.parent.mkdir(parents=True, exist_ok=True)
        blob = _MEMO_FORMAT + pickle.dumps((recipe, seen), protocol=pickle.HIGHEST_PROTOCOL)
        fd, tmp = tempfile.mkstemp(dir=key.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
            os.replace(tmp, key)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


def find_recipe(start: str | Path) -> Path:
    """The nearest ``plan.toml`` in ``start`` or a parent directory (as git finds ``.git``);
    RecipeError (exit 2) when there is none up to the file system root."""
    here = Path(start).absolute()
    for d in (here, *here.parents):
        candidate = d / "plan.toml"
        try:
            if candidate.is_file():
                return candidate
        except OSError:
            continue
    raise RecipeError(
        f"no plan.toml in {here} or any parent directory",
        hint="create a plan.toml or pass its path: `plan run path/to/plan.toml` (or -f PATH)",
    )


def _read(p: Path) -> str:
    try:
        text = p.read_text(encoding="utf-8")
        seen = _SEEN.get()
        if seen is not None:
            seen[str(p.resolve())] = _digest(text)
        return text
    except OSError as exc:
        raise RecipeError(f"cannot read {p}: {exc.strerror or exc}", file=str(p),
                          hint="check that the file is readable") from None
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{p} is not UTF-8 text (byte {exc.start})", file=str(p),
                          hint="a plan.toml is TOML text in UTF-8") from None


def _parse(text: str, file: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        raise RecipeError(
            f"TOML syntax error: {exc}",
            file=str(file),
            line=int(m.group(1)) if m else None,
            hint="fix the syntax at that line (see https://toml.io)",
        ) from None


def load_text(text: str, *, file: Path) -> Recipe:
    """Parse recipe text; ``file`` names it in errors and anchors relative paths."""
    return from_dict(_parse(text, file), file=file, text=text)


def from_dict(data: dict[str, Any], *, file: Path, text: str = "") -> Recipe:
    """Validate already-parsed data (used for recipes built from Python objects too).

    With ``[workspace] members``, each member's plan.toml is read from disk (relative to
    ``file``'s directory) and merged in as ``member:step`` steps."""
    if "project" not in data and isinstance(data.get("workspace"), dict):
        # A virtual workspace root (like Cargo's virtual manifest): no [project] table; the
        # name is the directory's, the platforms the default.
        data = {**data, "project": {"name": file.parent.name or "workspace"}}
    recipe = _model(data, file, text)
    if recipe.workspace is not None and recipe.workspace.members:
        root = file.parent
        sources = []
        for rel in expand_members(root, recipe.workspace.members, recipe.label):
            mfile = (root / rel / "plan.toml").resolve()
            mtext = _read(mfile)
            mdata = _parse(mtext, mfile)
            sources.append(MemberSource(rel, _model(mdata, mfile, mtext), mdata))
        recipe = merge_members(recipe, sources)
    validate_recipe(recipe)
    return recipe


def _model(data: dict[str, Any], file: Path, text: str) -> Recipe:
    if "members" in data:
        raise RecipeError(
            "unknown field 'members'", file=str(file), hint="did you mean [workspace] members?"
        )
    try:
        return Recipe.model_validate({**data, "file": file})
    except ValidationError as exc:
        raise _schema_error(exc, str(file), text) from None


def _schema_error(exc: ValidationError, label: str, text: str) -> RecipeError:
    err = exc.errors()[0]
    loc = [str(x) for x in err["loc"]]
    step = loc[1] if len(loc) >= 2 and loc[0] == "steps" else None
    field_path = loc[2:] if step else loc
    # Drop pydantic's union-tag segment (e.g. "shell") from the location.
    if step and field_path and field_path[0] in ("shell", "go", "rust", "c", "image"):
        field_path = field_path[1:]
    field = ".".join(field_path)
    etype = err["type"]
    rule = (err.get("ctx") or {}).get("error")
    if isinstance(rule, Violation):  # a rule of recipes/rules.py: its own words and hint
        if rule.field:
            field_path = [*field_path, rule.field]
        table = ["steps", step] if step else loc[:1] if len(field_path) > 1 else []
        names = [f for f in field_path if not f.isdigit()]
        line = _line_of(text, table, names[-1] if names else None) if table else None
        return RecipeError(rule.message, file=label, step=step, line=line, hint=rule.hint)
    if etype == "extra_forbidden":
        msg = f"unknown field '{field}'"
        hint = "check the spelling; see the recipe reference in README.md"
    elif etype in ("union_tag_invalid", "union_tag_not_found"):
        got = err.get("input", {})
        kind = got.get("kind") if isinstance(got, dict) else None
        msg = f"unknown kind '{kind}'" if kind else "missing 'kind'"
        hint = f"kind must be one of: {_KINDS}"
    elif etype == "missing":
        msg = f"missing required field '{field}'"
        hint = f"add `{field_path[-1] if field_path else field} = ...`"
    else:
        msg = f"invalid value for '{field}': {err['msg']}"
        hint = None
    line = _line_of(text, ["steps", step], field_path[-1] if field_path else None) if step \
        else None
    return RecipeError(msg, file=label, step=step, line=line, hint=hint)


def _line_of(text: str, table: list[str], field: str | None) -> int | None:
    """Best-effort line number of a table (``[steps.NAME]``, ``[project]``) or of one of its
    fields in the TOML text: ``field = ...`` at the start of a line, else inside an inline
    table (``{ mode = ... }``), else a sub-table header (``[[steps.NAME.copy]]``)."""
    if not text or not table:
        return None
    lines = text.splitlines()
    path = r"\s*\.\s*".join(rf"[\"']?{re.escape(t)}[\"']?" for t in table)
    header = re.compile(rf"^\s*\[\s*{path}\s*\]")
    start = next((i for i, line in enumerate(lines) if header.match(line)), None)
    if start is None or not field:
        return None if start is None else start + 1
    name = rf"[\"']?{re.escape(field)}[\"']?"
    inner = re.compile(rf"^\s*\[\[?\s*{path}\s*\.")  # [steps.a.env], [[steps.a.copy]]
    end = next((j for j in range(start + 1, len(lines))
                if lines[j].lstrip().startswith("[") and not inner.match(lines[j])), len(lines))
    for pattern in (rf"^\s*{name}\s*=", rf"[{{,]\s*{name}\s*=",
                    rf"^\s*\[\[?\s*{path}\s*\.\s*{name}\s*\]"):
        for j in range(start + 1, end):
            if re.search(pattern, lines[j]):
                return j + 1
    return start + 1
