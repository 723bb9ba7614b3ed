"""The first hour of a new user, through `plan`: the command forms run (shell, and C with the
system cc), a program name with spaces explained, `--output` printing the reference skopeo
needs, `plan report` of an image that was never pushed, one missing toolchain not blocking
the other steps, --version, the plan given positionally, with -f or found in a parent
directory, a virtual workspace root, `plan doctor` on a daemonless plan, `plan explain` of
every platform, an uppercase repository caught at load. Units: tests/unit/
test_first_hour_units.py."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from testkit import Cli, ProjectFactory, require_component

import crossplan

FORMS = """
[project]
name = "forms"
platforms = ["linux/amd64"]

[steps.script]
kind = "shell"
src = "src/"
command = '''
mkdir -p out
echo one > out/a
echo two > out/b
'''
outputs = ["out"]

[steps.argvs]
kind = "shell"
src = "src/"
command = [["mkdir", "-p", "my dir"], ["sh", "-c", "echo \\"$0\\" > 'my dir/x'", "a b"]]
outputs = ["my dir"]

[steps.stops]
kind = "shell"
src = "src/"
command = "echo first > first.txt\\nfalse\\necho never > never.txt"
outputs = ["first.txt"]

[steps.c-lists]
kind = "c"
src = "c/"
compiler = "gcc"
libc = "gnu"
build = [["sh", "-c", "$CC $CFLAGS -c hello.c -o hello.o"], ["sh", "-c", "$CC -o hello hello.o"]]
outputs = ["hello"]

[steps.c-script]
kind = "c"
src = "c/"
compiler = "gcc"
libc = "gnu"
build = '''
$CC $CFLAGS -c hello.c -o hello.o
$CC -o hello2 hello.o
'''
outputs = ["hello2"]
"""
HELLO_C = '#include <stdio.h>\nint main(void) { puts("hello from c"); return 0; }\n'


def _forms(make_project: ProjectFactory) -> Path:
    return make_project(FORMS, files={"src/in.txt": "x\n", "c/hello.c": HELLO_C})


def test_command_and_build_forms_run(cli: Cli, make_project: ProjectFactory,
                                     tmp_path: Path) -> None:
    proj = _forms(make_project)
    out = tmp_path / "export"
    res = cli("run", proj, "script", "argvs", "c-lists", "c-script", "--export", out, "--json")
    assert res.code == 0, res.stderr
    assert (out / "script/linux_amd64/out/b").read_text() == "two\n" or any(
        p.read_text() == "two\n" for p in out.rglob("b"))
    assert any(p.read_text() == "a b\n" for p in out.rglob("x"))
    built = {p.name for p in out.rglob("hello*")}
    assert {"hello", "hello2"} <= built
    hello = next(p for p in out.rglob("hello") if p.is_file())
    assert subprocess.run([str(hello)], capture_output=True, text=True).stdout == "hello from c\n"
    # a multi-line script stops at the first failing line
    res = cli("run", proj, "stops")
    assert res.code == 1
    assert "exited with status 1" in res.stderr


def test_a_program_name_with_spaces(cli: Cli, make_project: ProjectFactory) -> None:
    shell = make_project("""
        [project]
        name = "p"
        [steps.gen]
        kind = "shell"
        src = "src/"
        command = ["cmake -S . -B build", "cmake --build build"]
    """, name="shell")
    res = cli("run", shell)
    assert res.code == 2
    assert "program not found: 'cmake -S . -B build'" in res.stderr
    assert "a list of strings is ONE command's argv; for several commands use a list of " \
        "lists or a multi-line string" in res.stderr
    assert "plan.toml:6: step 'gen'" in res.stderr
    c = make_project("""
        [project]
        name = "p"
        platforms = ["linux/amd64"]
        [steps.lib]
        kind = "c"
        src = "src/"
        compiler = "gcc"
        libc = "gnu"
        build = ["cmake -S . -B build", "cmake --build build"]
        [steps.ok]
        kind = "shell"
        src = "src/"
        command = "echo ok > ok.txt"
        outputs = ["ok.txt"]
    """, name="c")
    assert cli("run", c, "ok").code == 0  # the broken C step only fails itself
    res = cli("run", c)
    assert res.code == 3
    assert "step 'lib'" in res.stderr and "ONE command's argv" in res.stderr


def test_one_missing_toolchain_only_fails_its_own_step(cli: Cli,
                                                        make_project: ProjectFactory) -> None:
    proj = make_project("""
        [project]
        name = "p"
        platforms = ["linux/amd64"]
        [steps.app-rust]
        kind = "rust"
        src = "r/"
        libc = "musl"
        platforms = ["linux/s390x"]
        [steps.app-c]
        kind = "shell"
        src = "r/"
        command = "echo ok > ok.txt"
        outputs = ["ok.txt"]
    """, files={"r/Cargo.toml": '[package]\nname = "r"\nversion = "0.1.0"\n',
                "r/src/main.rs": "fn main() {}\n"})
    (proj / "plan.toml").write_text((proj / "plan.toml").read_text().replace(
        'platforms = ["linux/amd64"]', 'platforms = ["linux/amd64", "linux/s390x"]', 1))
    res = cli("run", proj, "app-c", "--json")
    assert res.code == 0, res.stderr
    res = cli("run", proj, "app-rust")
    assert res.code == 3
    assert f"{proj / 'plan.toml'}: step 'app-rust'" in res.stderr


def test_version(cli: Cli) -> None:
    res = cli("--version")
    assert res.code == 0 and res.stdout.strip() == f"crossplan {crossplan.__version__}"
    res = cli("version", "--json")
    assert res.code == 0 and res.json()["version"] == crossplan.__version__


def test_every_command_takes_the_plan_the_same_way(cli: Cli, shell_project: Path) -> None:
    sub = shell_project / "words"
    for args in (["graph", shell_project], ["graph", "-f", shell_project],
                 ["affected", shell_project], ["affected", "--file", shell_project],
                 ["explain", shell_project, "gen"], ["explain", "gen", "-f", shell_project],
                 ["dockerfile", shell_project, "--json"],
                 ["dockerfile", "-f", shell_project, "--json"]):
        res = cli(*args)
        assert res.code in (0, 2), (args, res.stderr)
        assert "no plan" not in res.stderr, args
    # no path: the nearest plan.toml, here or in a parent directory (as git finds .git)
    for args in (["graph"], ["affected", "--json"], ["explain", "gen"]):
        res = cli(*args, cwd=sub)
        assert res.code == 0, (args, res.stderr)
    assert "gen" in cli("graph", cwd=sub).stdout
    res = cli("graph", shell_project, "-f", sub)
    assert res.code == 2 and "two plans given" in res.stderr


def test_a_virtual_workspace_root(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "mono"
    (root / "svc" / "src").mkdir(parents=True)
    (root / "plan.toml").write_text('[workspace]\nmembers = ["svc"]\n')
    (root / "svc" / "src" / "a").write_text("a\n")
    (root / "svc" / "plan.toml").write_text(
        '[project]\nname = "svc"\n[steps.gen]\nkind = "shell"\nsrc = "src/"\n'
        'command = "cp a b"\noutputs = ["b"]\nplatform_independent = true\n')
    res = cli("run", root, "--json")
    assert res.code == 0, res.stderr
    assert res.statuses() == {"svc:gen": "built"}


def test_doctor_on_a_daemonless_plan(cli: Cli, shell_project: Path, cache_dir: Path) -> None:
    managed = cache_dir / "toolchains" / "go-1.27.3-abc" / "go" / "bin"
    managed.mkdir(parents=True)
    (managed / "go").write_text("#!/bin/sh\necho go version go1.27.3 linux/amd64\n")
    (managed / "go").chmod(0o755)
    res = cli("doctor", shell_project, "--json",
              env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert res.code == 0, res.stdout
    checks = {c["name"]: c for c in res.json()["checks"]}
    assert checks["daemon"]["status"] == "warn"
    assert "no image step builds through buildx" in checks["daemon"]["detail"]
    assert any(t["source"].startswith("managed") and t["name"] == "go"
               for t in checks["toolchains"]["data"]["found"])


def test_explain_shows_every_platform_whole(cli: Cli, shell_project: Path) -> None:
    res = cli("explain", "report", "-f", shell_project)
    assert res.code == 0, res.stderr
    assert "report@linux/amd64" in res.stdout and "report@linux/arm64" in res.stdout
    assert "..." not in res.stdout
    # the whole command is there, however long (wrapped, never cut)
    words = ["mkdir", "-p", "out"]
    assert all(w in res.stdout for w in words)
    assert "report.txt" in res.stdout
    js = cli("explain", "report", "-f", shell_project, "--json").json()
    assert [e["platform"] for e in js["explanations"]] == ["linux/amd64", "linux/arm64"]


def test_an_uppercase_repository_is_caught_at_load(cli: Cli,
                                                   make_project: ProjectFactory) -> None:
    proj = make_project("""
        [project]
        name = "p"
        [steps.gen]
        kind = "shell"
        src = "src/"
        command = "echo > o"
        outputs = ["o"]
        [steps.image]
        kind = "image"
        copy = [{ from = "gen", dest = "/" }]
        tags = ["localhost:5000/Demo/hello:1.0"]
    """)
    res = cli("graph", proj)
    assert res.code == 2
    assert "plan.toml:11: step 'image'" in res.stderr
    assert "Demo" in res.stderr and "lowercase" in res.stderr.lower()


IMAGE = """
[project]
name = "{name}"
platforms = ["linux/amd64", "linux/arm64"]
[steps.gen]
kind = "shell"
src = "src/"
command = "echo $TARGETARCH > arch.txt"
outputs = ["arch.txt"]
[steps.image]
kind = "image"
copy = [{{ from = "gen", dest = "/" }}]
{tags}
"""


def test_output_names_the_reference_that_works(cli: Cli, make_project: ProjectFactory,
                                               tmp_path: Path) -> None:
    require_component(shutil.which("skopeo") is not None, "needs skopeo")
    proj = make_project(IMAGE.format(name="hello", tags='tags = ["localhost:5999/x/hello:1.0"]'))
    dist = tmp_path / "dist"
    res = cli("run", proj, "--output", f"oci:{dist}/hello")
    assert res.code == 0, res.stderr
    assert f"wrote oci:{dist}/hello:1.0" in res.stdout
    for ref, arch in ((f"oci:{dist}/hello:1.0", None), (f"oci:{dist}/hello:1.0-arm64", "arm64")):
        got = subprocess.run(["skopeo", "inspect", "--raw", ref], capture_output=True,
                             text=True, check=True)
        doc = json.loads(got.stdout)
        if arch is None:
            assert len(doc["manifests"]) == 2
        else:
            assert doc["mediaType"].endswith("manifest.v1+json")
    # no tags: the step's name, for a single plan and a workspace member alike
    bare = make_project(IMAGE.format(name="bare", tags=""), name="bare")
    res = cli("run", bare, "--output", f"oci:{dist}/bare")
    assert res.code == 0 and f"wrote oci:{dist}/bare:image" in res.stdout
    # never pushed (nothing listens on :5999): plan report reads the store
    rep = cli("report", "-f", proj, "--json")
    assert rep.code == 0, rep.stderr
    (img,) = rep.json()["images"]
    assert img["reference"].startswith("local store: image")
    assert sorted(p["platform"] for p in img["platforms"]) == ["linux/amd64", "linux/arm64"]
    assert cli("report", bare, "--json").code == 0


def test_workspace_layouts_use_the_same_ref(cli: Cli, tmp_path: Path) -> None:
    root = tmp_path / "ws"
    for m in ("a", "b"):
        (root / m / "src").mkdir(parents=True)
        (root / m / "src" / "f").write_text(m)
        (root / m / "plan.toml").write_text(IMAGE.format(name=m, tags=(
            'tags = ["localhost:5999/x/a:2.0"]' if m == "a" else "")))
    (root / "plan.toml").write_text('[workspace]\nmembers = ["a", "b"]\n')
    dist = tmp_path / "dist"
    res = cli("run", root, "--output", f"oci:{dist}")
    assert res.code == 0, res.stderr
    assert f"wrote oci:{dist}/a/image:2.0" in res.stdout
    assert f"wrote oci:{dist}/b/image:image" in res.stdout
    index = json.loads((dist / "b" / "image" / "index.json").read_text())
    names = sorted(m["annotations"]["org.opencontainers.image.ref.name"]
                   for m in index["manifests"] if "artifactType" not in m)  # not attestations
    assert names == ["image", "image-amd64", "image-arm64"]
