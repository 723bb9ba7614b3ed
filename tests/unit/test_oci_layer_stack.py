"""A stack of real tar layers applied per the OCI changeset rules: whiteouts, opaque
directories (lower layers only), overrides, file/directory replacement, links, gzip."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path
from typing import IO

import pytest

from crossplan.backends.oci.layer_stack import Entry, apply_layers, final_entries

# a member: "dir/" is a directory, ("name", b"data") a file, ("name", "->t") a symlink,
# ("name", "=>t") a hard link to t
Member = str | tuple[str, bytes | str]


def layer(*members: Member) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for m in members:
            if isinstance(m, str):
                info = tarfile.TarInfo(m.rstrip("/"))
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            name, body = m
            info = tarfile.TarInfo(name)
            if isinstance(body, bytes):
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
            else:
                info.type = tarfile.SYMTYPE if body.startswith("->") else tarfile.LNKTYPE
                info.linkname = body[2:]
                tar.addfile(info)
    return buf.getvalue()


def paths(*layers: bytes) -> dict[str, str]:
    return {p: e.kind for p, e in final_entries(layers).items()}


def test_regular_whiteout_deletes_a_lower_file_and_is_hidden() -> None:
    got = paths(layer("a/", ("a/x", b"1"), ("a/y", b"2")), layer(("a/.wh.x", b"")))
    assert got == {"a": "dir", "a/y": "file"}


def test_whiteout_of_a_directory_deletes_everything_below_it() -> None:
    got = paths(layer("a/", "a/b/", "a/b/c/", ("a/b/c/bar", b"1"), ("a/keep", b"k")),
                layer(("a/.wh.b", b"")))
    assert got == {"a": "dir", "a/keep": "file"}


@pytest.mark.parametrize("marker_first", [True, False])
def test_opaque_whiteout_hides_only_lower_layer_entries(marker_first: bool) -> None:
    base = layer("etc/", ("etc/cfg", b"c"), "bin/", ("bin/old", b"o"), "bin/tools/",
                 ("bin/tools/one", b"1"))
    new: list[Member] = ["bin/", ("bin/new", b"n"), "bin/tools/", ("bin/tools/two", b"2")]
    marker: Member = ("bin/.wh..wh..opq", b"")
    top = layer(marker, *new) if marker_first else layer(*new, marker)
    got = paths(base, top)
    assert got == {"etc": "dir", "etc/cfg": "file", "bin": "dir", "bin/new": "file",
                   "bin/tools": "dir", "bin/tools/two": "file"}


def test_opaque_whiteout_alone_empties_the_directory() -> None:
    got = paths(layer("bin/", ("bin/a", b"a"), "bin/sub/", ("bin/sub/b", b"b")),
                layer(("bin/.wh..wh..opq", b"")))
    assert got == {"bin": "dir"}


def test_a_whited_out_directory_recreated_later_has_only_the_new_entries() -> None:
    got = paths(layer("a/", "a/b/", ("a/b/old", b"o")), layer(("a/.wh.b", b"")),
                layer("a/b/", ("a/b/new", b"n")))
    assert got == {"a": "dir", "a/b": "dir", "a/b/new": "file"}


@pytest.mark.parametrize("marker_first", [True, False])
def test_a_whiteout_spares_what_its_own_layer_writes(marker_first: bool) -> None:
    recreate: list[Member] = ["a/b/", ("a/b/new", b"n")]
    marker: Member = ("a/.wh.b", b"")
    top = layer(marker, *recreate) if marker_first else layer(*recreate, marker)
    got = paths(layer("a/", "a/b/", ("a/b/old", b"o")), top)
    assert got == {"a": "dir", "a/b": "dir", "a/b/new": "file"}


def test_file_and_directory_replace_each_other() -> None:
    got = paths(layer(("x", b"file"), "d/", ("d/f", b"1"), "d/sub/", ("d/sub/g", b"2")),
                layer("x/", ("x/inner", b"i"), ("d", b"now a file")))
    assert got == {"x": "dir", "x/inner": "file", "d": "file"}


def test_later_layers_override_and_deleted_files_drop_their_reads() -> None:
    calls: list[str] = []

    def read(entry: Entry, stream: IO[bytes]) -> bytes | None:
        calls.append(entry.path)
        return stream.read() if entry.path.endswith(".txt") else None

    stack = apply_layers([layer(("a.txt", b"v1"), ("b.txt", b"b"), ("skip.bin", b"s")),
                          layer(("a.txt", b"v2"), (".wh.b.txt", b""))], read)
    assert stack.read == {"a.txt": b"v2"}
    assert stack.entries["a.txt"].layer == 1 and stack.entries["a.txt"].size == 2
    assert calls == ["a.txt", "b.txt", "skip.bin", "a.txt"]


def test_symlinks_and_hard_links_are_kept_and_links_share_their_target_read() -> None:
    stack = apply_layers(
        [layer("usr/", "usr/bin/", ("usr/bin/perl5", b"PERL"), ("usr/bin/perl", "=>usr/bin/perl5"),
               ("bin", "->usr/bin"), ("usr/bin/pl", "->usr/bin/perl5"))],
        lambda entry, stream: stream.read())
    e = stack.entries
    assert (e["bin"].kind, e["bin"].link) == ("symlink", "usr/bin")
    assert (e["usr/bin/pl"].kind, e["usr/bin/pl"].size) == ("symlink", 0)
    assert (e["usr/bin/perl"].kind, e["usr/bin/perl"].link) == ("hardlink", "usr/bin/perl5")
    assert e["usr/bin/perl"].size == 4
    assert stack.read == {"usr/bin/perl5": b"PERL", "usr/bin/perl": b"PERL"}


def test_gzip_layers_from_files_and_memory(tmp_path: Path) -> None:
    blob = tmp_path / "layer.tar.gz"
    blob.write_bytes(gzip.compress(layer("etc/", ("etc/os-release", b"ID=debian\n"))))
    top = gzip.compress(layer(("etc/hostname", b"h")))
    stack = apply_layers([blob, top], lambda entry, stream: stream.read())
    assert stack.read == {"etc/os-release": b"ID=debian\n", "etc/hostname": b"h"}


def test_escaping_names_and_bare_markers_are_ignored() -> None:
    got = paths(layer("a/", ("a/x", b"1")),
                layer(("../evil", b"e"), ("a/.wh.", b""), ("a/.wh..", b""), ("./a/y", b"y")))
    assert got == {"a": "dir", "a/x": "file", "a/y": "file"}


def test_whiteouts_reach_files_under_directories_without_entries() -> None:
    """Layers need not list parent directories: a whiteout of one still deletes below it."""
    got = paths(layer(("usr/share/doc/x/README", b"d"), ("usr/bin/sh", b"s"),
                      ("opt/a/b", b"b")),
                layer(("usr/share/.wh.doc", b""), ("opt/.wh..wh..opq", b"")))
    assert got == {"usr/bin/sh": "file"}
