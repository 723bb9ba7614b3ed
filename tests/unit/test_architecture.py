"""Architecture rules for crossplan/, read from the source with ``ast``: the module-level
import graph is a DAG, no module is over 400 lines, every module has a docstring, and the
planner imports without the runner, the backends or the cache (checked in a fresh
interpreter)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "crossplan"
MAX_LINES = 400
# What importing the planner must never load (it plans; it does not build, store or fetch).
PLANNER_MUST_NOT_LOAD = ("crossplan.runner", "crossplan.backends", "crossplan.cache")


@dataclass(frozen=True)
class Import:
    """``importer`` imports ``imported`` (both crossplan modules) at ``line``."""

    importer: str
    imported: str
    line: int
    kind: str  # "module" (runs on import), "function" (runs when called), "typing"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(tree: ast.Module) -> list[tuple[ast.Import | ast.ImportFrom, str]]:
    """Every import statement with its kind: at module level (class bodies, try and if
    blocks included), inside a function, or under ``if TYPE_CHECKING``."""
    found: list[tuple[ast.Import | ast.ImportFrom, str]] = []

    def visit(node: ast.AST, kind: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import | ast.ImportFrom):
                found.append((child, kind))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                visit(child, "function")
            elif isinstance(child, ast.If) and kind == "module" and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), "typing")
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), "module")
            else:
                visit(child, kind)

    visit(tree, "module")
    return found


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The crossplan module ``name`` denotes (its longest existing prefix), or None."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[Import] = []
    for node, kind in _import_nodes(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # ``from pkg import sub`` imports the submodule when there is one.
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        for target in targets:
            if target != "crossplan" and not target.startswith("crossplan."):
                continue
            resolved = _resolve(target, modules)
            if resolved is not None and resolved != module:
                out.append(Import(module, resolved, node.lineno, kind))
    return out


def all_imports() -> list[Import]:
    modules = source_files()
    return [imp for mod, path in modules.items() for imp in imports_of(mod, path, modules)]


def graph(kind: str) -> nx.DiGraph[str]:
    g: nx.DiGraph[str] = nx.DiGraph()
    g.add_nodes_from(source_files())
    for imp in all_imports():
        if imp.kind == kind:
            g.add_edge(imp.importer, imp.imported, line=imp.line)
    return g


def describe_cycles(g: nx.DiGraph[str]) -> str:
    lines = []
    for scc in sorted((c for c in nx.strongly_connected_components(g) if len(c) > 1),
                      key=lambda c: (-len(c), sorted(c))):
        sub = g.subgraph(scc)
        cycle = nx.find_cycle(sub)
        steps = [f"{a} -> {b} (line {g.edges[a, b]['line']})" for a, b in cycle]
        lines.append(f"strongly connected ({len(scc)} modules): {', '.join(sorted(scc))}\n"
                     "  e.g. cycle: " + "\n           ".join(steps))
    return "\n".join(lines)


def test_the_import_graph_reader_resolves_relative_and_function_imports(tmp_path: Path) -> None:
    modules = {"crossplan.a": tmp_path / "a.py", "crossplan.b": tmp_path / "b.py",
               "crossplan.pkg": tmp_path / "pkg" / "__init__.py",
               "crossplan.pkg.c": tmp_path / "pkg" / "c.py"}
    src = tmp_path / "pkg" / "c.py"
    src.parent.mkdir()
    src.write_text(
        "from typing import TYPE_CHECKING\n"
        "from .. import a\n"
        "from . import c\n"
        "from ..b import thing\n"
        "import os\n"
        "if TYPE_CHECKING:\n"
        "    from crossplan.pkg import x\n"
        "def f():\n"
        "    import crossplan.b.missing\n"
    )
    got = {(i.imported, i.kind) for i in imports_of("crossplan.pkg.c", src, modules)}
    assert got == {("crossplan.a", "module"), ("crossplan.b", "module"),
                   ("crossplan.pkg", "typing"), ("crossplan.b", "function")}
    real = graph("module")  # and on the real tree: a known module-level edge is there
    assert real.has_edge("crossplan.recipes.loader", "crossplan.recipes.members")


def test_module_level_import_graph_is_a_dag() -> None:
    module_level = graph("module")
    function_level = graph("function")
    print(f"module-level imports: {module_level.number_of_edges()} edges over "
          f"{module_level.number_of_nodes()} modules; function-level imports: "
          f"{function_level.number_of_edges()} edges")
    for a, b, data in sorted(function_level.edges(data=True)):
        print(f"  function-level: {a} -> {b} (line {data['line']})")
    cycles = describe_cycles(module_level)
    if cycles:
        print(cycles)
    assert nx.is_directed_acyclic_graph(module_level), (
        "module-level import cycles in crossplan/:\n" + cycles
    )


def test_no_module_is_over_400_lines() -> None:
    offenders: dict[str, int] = {}
    for path in source_files().values():
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            offenders[str(path.relative_to(REPO))] = n
    for rel, n in sorted(offenders.items(), key=lambda kv: -kv[1]):
        print(f"{rel}: {n} lines (max {MAX_LINES})")
    assert not offenders, f"modules over {MAX_LINES} lines: {offenders}"


def test_every_module_starts_with_a_docstring() -> None:
    missing: list[str] = []
    for path in source_files().values():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if ast.get_docstring(tree) is None:
            missing.append(str(path.relative_to(REPO)))
    for rel in missing:
        print(f"no module docstring: {rel}")
    assert not missing, f"modules without a docstring: {missing}"


def test_importing_the_planner_loads_no_runner_backend_or_cache() -> None:
    code = (
        "import json, sys\n"
        "import crossplan.planner\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('crossplan'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False)
    if proc.returncode != 0:
        pytest.fail(f"`import crossplan.planner` failed in a fresh interpreter:\n{proc.stderr}")
    loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    bad = sorted(m for m in loaded
                 if any(m == p or m.startswith(p + ".") for p in PLANNER_MUST_NOT_LOAD))
    for m in bad:
        print(f"loaded by `import crossplan.planner`: {m}")
    assert not bad, f"importing crossplan.planner loads {len(bad)} forbidden modules: {bad}"
