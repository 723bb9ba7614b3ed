"""Low-level libraries the layers above drive: OCI (layouts, registries), buildx and Docker
invocation, toolchains (Go, Rust, C), ELF checks, host process running."""
