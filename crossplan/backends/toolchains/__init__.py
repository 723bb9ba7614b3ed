"""Go, Rust and C cross toolchains: discovery, pinned installs, BuildActions for the executor."""

from __future__ import annotations

from .base import BuildAction, Toolchain
from .discover import FoundToolchain, discover, toolchain_for
from .managed import install

__all__ = ["BuildAction", "FoundToolchain", "Toolchain", "discover", "install", "toolchain_for"]
