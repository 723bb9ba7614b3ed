#!/usr/bin/env bash
# supply-chain-tools.sh — install Debian trixie's `cosign` and `oras` (Go binaries that run
# on bookworm) for the supply-chain tests: fetched and cached by scripts/lib/trixie.sh (as
# ci-env.sh does for the trixie dockerd), extracted with dpkg-deb, never installed.
#
#   scripts/supply-chain-tools.sh          install into $CROSSPLAN_CI_PREFIX/supply/bin
#                                          (idempotent: a second run only checks versions)
#   scripts/supply-chain-tools.sh --print  print the bin directory
#
# Tests find the tools through CROSSPLAN_SUPPLY_BIN (default /opt/crossplan-ci/supply/bin).
set -euo pipefail

CI_PREFIX=${CROSSPLAN_CI_PREFIX:-/opt/crossplan-ci}
CI_CACHE=${CROSSPLAN_CI_CACHE:-/var/cache/crossplan-ci}
BIN=$CI_PREFIX/supply/bin
STAMP=$CI_PREFIX/supply/installed-versions
PACKAGES=(cosign oras)
# shellcheck source=lib/trixie.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/trixie.sh"  # trixie_fetch, trixie_extract

log() { printf '[supply-chain-tools] %s\n' "$*"; }
die() { printf '[supply-chain-tools] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ ${1:-} == --print ]]; then echo "$BIN"; exit 0; fi

if [[ -s $STAMP && -x $BIN/cosign && -x $BIN/oras ]]; then
  log "already installed ($(tr '\n' ' ' <"$STAMP"))"
else
  [[ $(id -u) == 0 ]] || die "install must run as root"
  trixie_fetch "${PACKAGES[@]}"
  x=$(mktemp -d "$CI_CACHE/extract.XXXXXX")
  trixie_extract "$x"
  mkdir -p "$BIN"
  for f in "${PACKAGES[@]}"; do
    install -m 0755 "$x/usr/bin/$f" "$BIN/.$f.new"
    mv -f "$BIN/.$f.new" "$BIN/$f"
  done
  trixie_versions >"$STAMP"
  rm -rf "$x"
  log "installed: $(tr '\n' ' ' <"$STAMP")"
fi
# Sanity: both run on this libc.
"$BIN/cosign" version >/dev/null 2>&1 || die "cosign does not run here"
"$BIN/oras" version >/dev/null 2>&1 || die "oras does not run here"
