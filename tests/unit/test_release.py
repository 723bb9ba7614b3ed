"""Release reports and tag pruning as pure functions: decide() tables, version order, time
parsing, gunzipped sizes, reports over an in-memory image and over an OCI layout."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from crossplan.backends.oci import ImageSpec, LayerEntry, LayerSpec, build_index, write_layout
from crossplan.backends.oci.image import BuiltIndex
from crossplan.errors import RecipeError
from crossplan.platforms import Platform
from crossplan.release import compare, markdown, read_image
from crossplan.release.prune import TagInfo, decide, parse_time, version_key
from crossplan.release.report import SizeCache, gunzipped
from crossplan.release.source import LayoutSource, plan_references, sibling

AMD, ARM = Platform("linux", "amd64"), Platform("linux", "arm64")


def d(n: int) -> str:
    return f"sha256:{n:064x}"


def idx(tag: str, digest: int, children: tuple[int, ...] = (), created: str | None = None
        ) -> TagInfo:
    return TagInfo(tag, d(digest), "application/vnd.oci.image.index.v1+json", created,
                   tuple(d(c) for c in children))


def man(tag: str, digest: int, created: str | None = None) -> TagInfo:
    return TagInfo(tag, d(digest), "application/vnd.oci.image.manifest.v1+json", created)


def verdict(infos: list[TagInfo], keep: int) -> tuple[set[str], list[str]]:
    decisions, digests = decide(infos, keep)
    return {x.tag for x in decisions if x.action == "delete"}, digests


def test_keeps_newest_by_time_then_version() -> None:
    infos = [
        idx("1.0", 10, (11, 12), "2024-01-01T00:00:00Z"),
        man("1.0-amd64", 11), man("1.0-arm64", 12),
        idx("1.1", 20, (21, 22), "2024-02-01T00:00:00Z"),
        man("1.1-amd64", 21), man("1.1-arm64", 22),
        idx("0.9-hotfix", 30, (31, 32), "2024-03-01T00:00:00Z"),  # newest by time
    ]
    deleted, digests = verdict(infos, 2)
    assert deleted == {"1.0", "1.0-amd64", "1.0-arm64"}
    assert digests == [d(10), d(11), d(12)]  # the index first, then its manifests


def test_never_deletes_a_digest_a_kept_tag_uses() -> None:
    infos = [
        idx("2.0", 1, (2, 3)), man("2.0-amd64", 2), man("2.0-arm64", 3),
        idx("1.0", 4, (2, 5)), man("1.0-amd64", 2), man("1.0-arm64", 5),  # amd64 unchanged
        idx("latest", 1, (2, 3)),  # the same index as 2.0
        idx("stable", 4, (2, 5)),  # the same index as 1.0: not kept, so 1.0 goes with it
    ]
    decisions, digests = decide(infos, 1)
    by_tag = {x.tag: x for x in decisions}
    assert {t for t, x in by_tag.items() if x.action == "delete"} == {
        "1.0", "1.0-arm64", "stable"}
    assert by_tag["1.0-amd64"].action == "keep"
    assert "kept tag 2.0" in by_tag["1.0-amd64"].reason
    assert by_tag["latest"].action == "keep"
    assert digests == [d(4), d(5)]  # d(2) is 2.0's amd64 manifest: never deleted


def test_equal_times_order_by_version() -> None:
    tags = ["1.9", "1.10", "1.9-rc.1", "v1.8", "latest", "main", "1.10.1"]
    assert sorted(tags, key=version_key, reverse=True) == [
        "1.10.1", "1.10", "1.9", "1.9-rc.1", "v1.8", "main", "latest"]
    infos = [idx(t, i, ()) for i, t in enumerate(tags)]  # no created times at all
    deleted, _ = verdict(infos, 3)
    assert deleted == {"1.9-rc.1", "v1.8", "latest", "main"}


def test_arch_tags_need_their_release() -> None:
    infos = [idx("1.0", 1, (2,)), man("1.0-amd64", 2), man("tool-arm64", 3, "2030-01-01T00:00:00Z")]
    decisions, _ = decide(infos, 1)
    assert {x.tag: x.release for x in decisions} == {
        "1.0": "1.0", "1.0-amd64": "1.0", "tool-arm64": "tool-arm64"}
    assert [x.tag for x in decisions if x.action == "keep"] == ["tool-arm64"]  # newest


def test_parse_time() -> None:
    assert parse_time("2024-05-06T07:08:09.123456789Z") == parse_time("2024-05-06T07:08:09.123456Z")
    assert parse_time("2024-05-06T09:08:09+02:00") == parse_time("2024-05-06T07:08:09Z")
    assert parse_time("yesterday") is None and parse_time(None) is None


def test_gunzipped_counts_every_member() -> None:
    a, b = b"a" * 100_000, b"b" * 3
    size, digest = gunzipped(gzip.compress(a) + gzip.compress(b))
    assert size == len(a + b) and digest == "sha256:" + hashlib.sha256(a + b).hexdigest()


def _built(text: str, shared: str = "shared\n") -> BuiltIndex:
    specs = {
        p: ImageSpec(layers=[
            LayerSpec((LayerEntry("/etc/shared", data=shared.encode()),), "COPY --from=gen /etc/"),
            LayerSpec((LayerEntry("/bin/app", data=f"{text} {p.arch}\n".encode() * 50),),
                      "COPY --from=app /bin/"),
        ], created=86400)
        for p in (AMD, ARM)
    }
    return build_index(specs)


def _layout(tmp_path: Path, built: BuiltIndex, name: str) -> str:
    write_layout(built, tmp_path / name, ref_name="1.0")
    return f"oci:{tmp_path / name}"


def test_report_from_a_layout(tmp_path: Path) -> None:
    built = _built("v1")
    report = read_image(_source(tmp_path, built), steps=["gen", "app"], cache=SizeCache())
    assert [p.platform for p in report.platforms] == ["linux/amd64", "linux/arm64"]
    assert report.digest == built.digest
    for p in report.platforms:
        image = built.images[Platform.parse(p.platform)]
        manifest = json.loads(image.manifest)
        assert p.compressed == sum(x["size"] for x in manifest["layers"])
        assert [x.step for x in p.layers] == ["gen", "app"]
        for layer in p.layers:
            blob = built.blobs[layer.digest].read()
            assert layer.uncompressed == len(gzip.decompress(blob))
    assert report.shared_layers == (report.platforms[0].layers[0].digest,)
    assert report.warnings == ()


def _source(tmp_path: Path, built: BuiltIndex, name: str = "a") -> LayoutSource:
    from crossplan.release.source import open_source

    src = open_source(_layout(tmp_path, built, name))
    assert isinstance(src, LayoutSource)
    return src


def test_compare_and_markdown(tmp_path: Path) -> None:
    new = read_image(_source(tmp_path, _built("v2, longer"), "new"), steps=["gen", "app"])
    old = read_image(_source(tmp_path, _built("v1"), "old"), steps=["gen", "app"])
    report = compare(new, old)
    for delta in report.delta:
        a, b = report.platform(delta.platform), old.platform(delta.platform)
        assert a is not None and b is not None
        assert delta.status == "changed"
        assert delta.compressed == a.compressed - b.compressed
        assert delta.added == (a.layers[1].digest,) and delta.removed == (b.layers[1].digest,)
    text = markdown(report)
    assert "| linux/amd64 |" in text and "| linux/arm64 |" in text
    assert f"compared with `{old.reference}`" in text
    assert "| Shared | New |" in text
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == 3  # the shared gen layer once, app per platform
    assert "--from=gen" in rows[0] and rows[0].endswith("| yes |  |")  # shared, not new
    assert all(row.endswith("|  | yes |") for row in rows[1:])  # app: per platform, new
    same = compare(old, old)
    assert {x.status for x in same.delta} == {"unchanged"}


def test_references(tmp_path: Path) -> None:
    tags = [("image", ("localhost:5000/a/b:1.0", "localhost:5000/a/b:latest")), ("x", ())]
    assert plan_references(tags, None) == ["localhost:5000/a/b:1.0"]
    assert plan_references(tags, "2.0") == ["localhost:5000/a/b:2.0"]
    assert plan_references([], "oci:dist:1.0") == ["oci:dist:1.0"]
    with pytest.raises(RecipeError):
        plan_references([("x", ())], None)
    assert sibling("localhost:5000/a/b:1.0", "0.9") == "localhost:5000/a/b:0.9"
    assert sibling("oci:dist:1.0", "0.9") == "oci:dist:0.9"
    assert sibling("oci:dist", "ghcr.io/a/b:1") == "ghcr.io/a/b:1"


def test_tags_naming_one_image_are_one_release() -> None:
    march, jan = "2024-03-01T00:00:00Z", "2024-01-01T00:00:00Z"
    infos = [idx("latest", 1, (), march), idx("2.0", 1, (), march), idx("1.0", 2, (), jan),
             idx("0.9", 3, (), "2023-01-01T00:00:00Z")]
    decisions, _ = decide(infos, 2)
    assert [(x.tag, x.action) for x in decisions] == [
        ("2.0", "keep"), ("latest", "keep"), ("1.0", "keep"), ("0.9", "delete")]
    assert {x.reason for x in decisions if x.tag in ("2.0", "latest")} == {"newest 2 (#1)"}
