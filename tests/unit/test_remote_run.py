"""A remote cache in a run (fake registry): settings precedence, the level-by-level batched
prefetch, the scheduler's hooks, and plan-wide push/pull."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from remote_fakes import FakeRegistry
from testkit import plan_of

from crossplan.api.running import executor_for
from crossplan.backends.oci.registry import RegistryUnreachable
from crossplan.cache.artifact import tag_for
from crossplan.cache.remote import RemoteCache, RemoteSettings
from crossplan.cache.signing import SigningKey, write_keypair
from crossplan.cache.store import Store
from crossplan.errors import RecipeError
from crossplan.executors.events import StepEvent
from crossplan.executors.result import RunResult
from crossplan.executors.substitution import RemoteRun, pull_plan, push_plan, remote_settings
from crossplan.planner import Plan
from crossplan.recipes import from_dict
from crossplan.runner.scheduler import execute_plan

REMOTE = "fake.test:5000/team/plan-cache"
SH = ["sh", "-c"]
STEPS: dict[str, dict[str, Any]] = {
    "gen": {"command": [*SH, "cat a.txt > gen.txt"], "outputs": ["gen.txt"],
            "platform_independent": True},
    "mid": {"deps": ["gen"], "command": [*SH, "(cat deps/gen/gen.txt; echo mid) > mid.txt"],
            "outputs": ["mid.txt"]},
    "top": {"deps": ["mid"], "command": [*SH, "cat deps/mid/mid.txt > top.txt; echo $TARGETARCH"
                                              " >> top.txt"], "outputs": ["top.txt"]},
}


def recipe_plan(root: Path, cache: dict[str, Any] | None = None) -> Plan:
    (root / "src").mkdir(parents=True, exist_ok=True)
    (root / "src" / "a.txt").write_text("alpha\n")
    data: dict[str, Any] = {
        "project": {"name": "t", "platforms": ["linux/amd64", "linux/arm64"]},
        "steps": {sid: {"kind": "shell", "src": "src", **s} for sid, s in STEPS.items()},
    }
    if cache is not None:
        data["cache"] = cache
    return plan_of(from_dict(data, file=root / "plan.toml"), environ={"PATH": os.environ["PATH"]})


@pytest.fixture
def plan(tmp_path: Path) -> Plan:
    return recipe_plan(tmp_path / "proj")


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    a, b = Store(tmp_path / "a"), Store(tmp_path / "b")
    yield a, b
    a.close()
    b.close()


def run_with(
    plan: Plan, store: Store, fake: FakeRegistry, events: list[StepEvent] | None = None,
    **settings: Any,
) -> RunResult:
    rr = RemoteRun(plan, RemoteCache(RemoteSettings(REMOTE, **settings), store, client=fake),
                   events.append if events is not None else None)
    rr.prefetch()
    try:
        result, _ = execute_plan(
            plan, executor_for(plan, store, {}, store.root / "tc", lambda e: None, remote=rr),
            on_event=events.append if events is not None else None,
        )
        return rr.finish(result)
    finally:
        rr.close()


def statuses(result: RunResult) -> dict[str, str]:
    return {str(s.node): s.status for s in result.steps}


def test_second_store_substitutes_everything_with_one_batch_per_level(
    plan: Plan, stores: tuple[Store, Store]
) -> None:
    a, b = stores
    fake = FakeRegistry()
    first = run_with(plan, a, fake)
    assert set(statuses(first).values()) == {"built"}
    assert len(fake.manifests) == 5  # gen, mid x2, top x2
    fake.calls.clear()
    events: list[StepEvent] = []
    second = run_with(plan, b, fake, events)
    assert set(statuses(second).values()) == {"substituted"}, statuses(second)
    assert not [e for e in events if e.kind == "started"]  # nothing was built
    assert second.warnings == ()
    # level by level: gen, then mid@amd64+mid@arm64, then top@amd64+top@arm64
    looked = fake.ops("get_manifest")
    keys = {str(s.node): s.key for s in first.steps}
    assert looked[0] == tag_for(keys["gen"] or "")
    assert set(looked[1:3]) == {tag_for(keys[f"mid@linux/{a}"] or "") for a in ("amd64", "arm64")}
    assert set(looked[3:]) == {tag_for(keys[f"top@linux/{a}"] or "") for a in ("amd64", "arm64")}
    assert len(looked) == 5
    for s in first.steps:
        assert b.get(s.key or "") is not None
        assert {str(x.node): x.outputs for x in second.steps}[str(s.node)] == s.outputs


def test_corrupt_blob_in_the_middle_is_rebuilt_and_the_rest_substituted(
    plan: Plan, stores: tuple[Store, Store]
) -> None:
    a, b = stores
    fake = FakeRegistry()
    first = run_with(plan, a, fake)
    mid = first.step("mid", "linux/arm64")
    digest = mid.outputs["mid.txt"]
    import hashlib

    sha = "sha256:" + hashlib.sha256(a.blob_path(digest).read_bytes()).hexdigest()
    fake.serve[sha] = b"garbage"
    events: list[StepEvent] = []
    second = run_with(plan, b, fake, events)
    st = statuses(second)
    # mid@amd64 shares the blob (same content): both rebuilt; deterministic outputs mean
    # their dependents' keys are unchanged and still substituted.
    assert st["mid@linux/arm64"] == "built" and st["mid@linux/amd64"] == "built"
    assert st["gen"] == "substituted" and st["top@linux/arm64"] == "substituted"
    warnings = [e for e in events if e.kind == "warning"]
    assert warnings and all("corrupt" in e.message for e in warnings)
    assert any(mid.key in w for w in second.warnings)
    assert second.step("top", "linux/arm64").outputs == first.step("top", "linux/arm64").outputs


def test_read_mode_substitutes_but_never_pushes(plan: Plan, stores: tuple[Store, Store]) -> None:
    a, _ = stores
    fake = FakeRegistry()
    result = run_with(plan, a, fake, mode="read")
    assert set(statuses(result).values()) == {"built"}
    assert fake.manifests == {} and fake.ops("upload_blob") == []


def test_unreachable_registry_is_one_warning_and_a_local_build(
    plan: Plan, stores: tuple[Store, Store]
) -> None:
    fake = FakeRegistry()
    fake.fail["ping"] = RegistryUnreachable("cannot reach registry fake.test:5000")
    events: list[StepEvent] = []
    result = run_with(plan, stores[0], fake, events)
    assert result.ok and set(statuses(result).values()) == {"built"}
    warnings = [e for e in events if e.kind == "warning"]
    assert len(warnings) == 1 and "unreachable" in warnings[0].message
    assert warnings[0].node.step == "remote-cache"
    assert len(result.warnings) == 1


def test_push_and_pull_a_whole_plan(plan: Plan, stores: tuple[Store, Store]) -> None:
    a, b = stores
    execute_plan(plan, executor_for(plan, a, {}, a.root / "tc", lambda e: None))
    fake = FakeRegistry()
    with RemoteCache(RemoteSettings(REMOTE), a, client=fake) as rc:
        pushed = push_plan(plan, rc)
    assert set(pushed.values()) == {"pushed"} and len(fake.manifests) == 5
    rr = RemoteRun(plan, RemoteCache(RemoteSettings(REMOTE), b, client=fake))
    pulled = pull_plan(rr)
    assert set(pulled.values()) == {"pulled"}
    assert len(b.keys()) == 5
    again = RemoteRun(plan, RemoteCache(RemoteSettings(REMOTE), b, client=fake))
    assert set(pull_plan(again).values()) == {"local"}


def test_push_of_a_partly_built_plan(plan: Plan, stores: tuple[Store, Store]) -> None:
    a, _ = stores
    gen_only = plan.subplan(plan.select(["gen"]))
    execute_plan(gen_only, executor_for(gen_only, a, {}, a.root / "tc", lambda e: None))
    with RemoteCache(RemoteSettings(REMOTE), a, client=FakeRegistry()) as rc:
        pushed = push_plan(plan, rc)
    assert {str(n): s for n, s in pushed.items()}["gen"] == "pushed"
    assert sorted(pushed.values()).count("not built") == 4


# -- settings --------------------------------------------------------------------------------

def test_flag_beats_env_beats_plan_toml(tmp_path: Path) -> None:
    p = recipe_plan(tmp_path, {"remote": "localhost:5000/toml/cache", "mode": "read"})
    env = {"CROSSPLAN_CACHE_REMOTE": "localhost:5000/env/cache"}
    s = remote_settings(p.recipe, environ={"PATH": os.environ["PATH"]})
    assert s is not None and (s.remote, s.mode) == ("localhost:5000/toml/cache", "read")
    s = remote_settings(p.recipe, environ=env)
    assert s is not None and s.remote == "localhost:5000/env/cache"
    s = remote_settings(p.recipe, remote="localhost:5000/flag/cache", mode="readwrite",
                        environ={**env, "CROSSPLAN_CACHE_MODE": "read"})
    assert s is not None and (s.remote, s.mode) == ("localhost:5000/flag/cache", "readwrite")
    assert remote_settings(p.recipe, mode="off", environ=env) is None
    assert remote_settings(p.recipe, environ={"CROSSPLAN_CACHE_MODE": "off"}) is None
    assert remote_settings(p.recipe, remote="", environ=env) is None
    assert remote_settings(recipe_plan(tmp_path / "none").recipe, environ={}) is None


def test_bad_mode_is_a_recipe_error(tmp_path: Path) -> None:
    p = recipe_plan(tmp_path, {"remote": "localhost:5000/c"})
    with pytest.raises(RecipeError, match="unknown cache mode 'sometimes'"):
        remote_settings(p.recipe, mode="sometimes", environ={"PATH": os.environ["PATH"]})


def test_keys_are_read_relative_to_the_plan(tmp_path: Path) -> None:
    secret, public = write_keypair(tmp_path / "keys", "ci-1")
    p = recipe_plan(tmp_path, {
        "remote": "localhost:5000/c", "signing_key": "keys/ci-1.key",
        "trusted_keys": ["keys/ci-1.pub", public.read_text().strip()],
    })
    s = remote_settings(p.recipe, environ={"PATH": os.environ["PATH"]})
    assert s is not None and s.signing_key == SigningKey.parse(secret.read_text())
    assert s.trusted_keys == (s.signing_key.public(),) * 2
    s = remote_settings(p.recipe, mode="read", environ={})  # read mode never needs the secret
    assert s is not None and s.signing_key is None
    bad = recipe_plan(tmp_path / "bad", {"remote": "localhost:5000/c", "signing_key": "nope.key"})
    with pytest.raises(RecipeError, match="cannot read the cache signing key"):
        remote_settings(bad.recipe, environ={"PATH": os.environ["PATH"]})
