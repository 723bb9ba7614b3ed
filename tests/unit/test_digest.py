"""Input tree digests: what enters them, what doesn't, and the stat memo."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from crossplan.hashing import file_digest, hash_bytes
from crossplan.probe import digest as digest_mod
from crossplan.probe.digest import StatMemo, tree_digest

OLD = time.time() - 3600  # an mtime safely outside the racy window


def _tree(root: Path, files: dict[str, str], *, age: bool = True) -> Path:
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        if age:
            os.utime(p, (OLD, OLD))
    return root


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return _tree(tmp_path / "t", {"a.txt": "alpha\n", "sub/b.txt": "beta\n", "sub/c/d": "d"})


def test_lists_sorted_relative_posix_paths_with_blake3(tree: Path) -> None:
    td = tree_digest(tree)
    assert [f.path for f in td.files] == ["a.txt", "sub/b.txt", "sub/c/d"]
    assert td.files[0].digest == hash_bytes(b"alpha\n")
    assert td.as_map()["sub/b.txt"] == hash_bytes(b"beta\n")


def test_digest_is_stable_and_independent_of_location(tree: Path, tmp_path: Path) -> None:
    other = _tree(tmp_path / "u", {"sub/c/d": "d", "a.txt": "alpha\n", "sub/b.txt": "beta\n"})
    assert tree_digest(tree).digest == tree_digest(tree).digest == tree_digest(other).digest


def test_one_changed_byte_changes_the_digest(tree: Path) -> None:
    before = tree_digest(tree).digest
    (tree / "sub/b.txt").write_text("betA\n")
    assert tree_digest(tree).digest != before


def test_renaming_a_file_changes_the_digest(tree: Path) -> None:
    before = tree_digest(tree).digest
    (tree / "a.txt").rename(tree / "z.txt")
    assert tree_digest(tree).digest != before


def test_exec_bit_enters_the_digest_but_other_mode_bits_do_not(tree: Path) -> None:
    before = tree_digest(tree).digest
    os.chmod(tree / "a.txt", 0o600)
    assert tree_digest(tree).digest == before
    os.chmod(tree / "a.txt", 0o755)
    after = tree_digest(tree)
    assert after.digest != before
    assert after.as_map()["a.txt"].endswith("+x")


def test_mtime_does_not_enter_the_digest(tree: Path) -> None:
    before = tree_digest(tree).digest
    for p in tree.rglob("*"):
        os.utime(p, (OLD + 5, OLD + 5))
    assert tree_digest(tree).digest == before


def test_empty_directories_do_not_count(tree: Path) -> None:
    before = tree_digest(tree).digest
    (tree / "empty" / "nested").mkdir(parents=True)
    assert tree_digest(tree).digest == before


def test_symlinks_are_hashed_by_target(tree: Path) -> None:
    os.symlink("a.txt", tree / "link")
    td = tree_digest(tree)
    link = next(f for f in td.files if f.path == "link")
    assert link.link == "a.txt"
    assert link.digest == hash_bytes(b"a.txt")
    (tree / "link").unlink()
    os.symlink("sub/b.txt", tree / "link")
    assert tree_digest(tree).digest != td.digest


@pytest.mark.parametrize("ignore_file", [".gitignore", ".dockerignore"])
def test_ignore_files_are_honoured(tree: Path, ignore_file: str) -> None:
    (tree / ignore_file).write_text("*.log\nbuild/\n")
    before = tree_digest(tree)
    _tree(tree, {"x.log": "noise", "build/out.o": "obj", "sub/y.log": "noise"})
    after = tree_digest(tree)
    assert after.digest == before.digest
    assert {f.path for f in after.files} == {ignore_file, "a.txt", "sub/b.txt", "sub/c/d"}


def test_exclude_list_is_honoured(tree: Path) -> None:
    td = tree_digest(tree, exclude=["sub/", "*.md"])
    assert [f.path for f in td.files] == ["a.txt"]
    _tree(tree, {"README.md": "docs"})
    assert tree_digest(tree, exclude=["sub/", "*.md"]).digest == td.digest


def test_vcs_and_crossplan_dirs_always_ignored(tree: Path) -> None:
    before = tree_digest(tree).digest
    _tree(tree, {".git/HEAD": "ref", ".crossplan/x": "y", "sub/__pycache__/m.pyc": "z"})
    assert tree_digest(tree).digest == before


def test_a_file_root_digests_that_file(tmp_path: Path) -> None:
    f = tmp_path / "one.bin"
    f.write_bytes(b"\x00" * 70000)  # above the mmap threshold
    td = tree_digest(f)
    assert [x.path for x in td.files] == ["one.bin"]
    assert td.files[0].digest == file_digest(f) == hash_bytes(b"\x00" * 70000)


def _count_hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = digest_mod.file_digest

    def counting(path: str | os.PathLike[str], size: int | None = None) -> str:
        calls.append(os.fspath(path))
        return real(path, size)

    monkeypatch.setattr(digest_mod, "file_digest", counting)
    return calls


def test_stat_memo_skips_rehashing_unchanged_files(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_hashes(monkeypatch)
    memo = StatMemo(tmp_path / "memo")
    cold = tree_digest(tree, memo=memo)
    assert len(calls) == 3
    memo.save()
    calls.clear()
    warm = tree_digest(tree, memo=StatMemo(tmp_path / "memo"))  # a new process, from disk
    assert calls == []
    assert warm.digest == cold.digest


def test_stat_memo_rehashes_only_the_changed_file(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memo = StatMemo(tmp_path / "memo")
    before = tree_digest(tree, memo=memo).digest
    calls = _count_hashes(monkeypatch)
    (tree / "sub/b.txt").write_text("BETA\n")  # same size, new mtime
    after = tree_digest(tree, memo=memo)
    assert [Path(c).name for c in calls] == ["b.txt"]
    assert after.digest != before
    assert after.as_map()["sub/b.txt"] == hash_bytes(b"BETA\n")


def test_stat_memo_rehashes_after_touch_but_digest_is_unchanged(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memo = StatMemo(tmp_path / "memo")
    before = tree_digest(tree, memo=memo).digest
    calls = _count_hashes(monkeypatch)
    os.utime(tree / "a.txt", (OLD + 60, OLD + 60))
    assert tree_digest(tree, memo=memo).digest == before
    assert [Path(c).name for c in calls] == ["a.txt"]


def test_stat_memo_does_not_trust_racily_fresh_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file written just now may be rewritten within the same mtime tick (same size,
    same mtime): its digest must not be memoized, or the rewrite would go unnoticed."""
    root = _tree(tmp_path / "t", {"f.txt": "one\n"}, age=False)
    memo = StatMemo(tmp_path / "memo")
    first = tree_digest(root, memo=memo)
    st = os.stat(root / "f.txt")
    (root / "f.txt").write_text("two\n")  # same size...
    os.utime(root / "f.txt", ns=(st.st_atime_ns, st.st_mtime_ns))  # ...and same mtime tick
    assert os.stat(root / "f.txt").st_ino == st.st_ino
    second = tree_digest(root, memo=memo)
    assert second.digest != first.digest
    assert second.as_map()["f.txt"] == hash_bytes(b"two\n")


def test_stat_memo_without_directory_persists_nothing(tree: Path, tmp_path: Path) -> None:
    memo = StatMemo(None)
    tree_digest(tree, memo=memo)
    memo.save()
    assert list(tmp_path.glob("**/*.json")) == []
