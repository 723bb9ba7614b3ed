#!/usr/bin/env bash
# supply-chain-tools.sh — install Debian trixie's `cosign` and `oras` (Go binaries that run
# on bookworm) for the supply-chain tests: downloaded with a private apt state (as
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

log() { printf '[supply-chain-tools] %s\n' "$*"; }
die() { printf '[supply-chain-tools] ERROR: %s\n' "$*" >&2; exit 1; }

if [[ ${1:-} == --print ]]; then echo "$BIN"; exit 0; fi

if [[ -s $STAMP && -x $BIN/cosign && -x $BIN/oras ]]; then
  log "already installed ($(tr '\n' ' ' <"$STAMP"))"
else
  [[ $(id -u) == 0 ]] || die "install must run as root"
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  [[ -n $mirror ]] || die "no URIs: line in /etc/apt/sources.list.d/debian.sources"
  work=$CI_CACHE/supply
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
  cat >"$work/trixie.sources" <<EOF
Types: deb
URIs: $mirror
Suites: trixie
Components: main
Architectures: amd64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  o=(-o "Dir::Etc::SourceList=$work/trixie.sources" -o Dir::Etc::SourceParts=/nonexistent
     -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
     -o APT::Architectures::=amd64 -o APT::Sandbox::User=root -o DPkg::Lock::Timeout=600)
  log "fetching trixie package lists from $mirror"
  apt-get -q "${o[@]}" update
  rm -f "$work"/debs/*.deb
  (cd "$work/debs" && apt-get -q "${o[@]}" download "${PACKAGES[@]}")
  x=$work/extract
  rm -rf "$x"; mkdir -p "$x" "$BIN"
  for deb in "$work"/debs/*.deb; do dpkg-deb -x "$deb" "$x"; done
  for f in "${PACKAGES[@]}"; do
    install -m 0755 "$x/usr/bin/$f" "$BIN/.$f.new"
    mv -f "$BIN/.$f.new" "$BIN/$f"
  done
  for deb in "$work"/debs/*.deb; do
    echo "$(dpkg-deb -f "$deb" Package)=$(dpkg-deb -f "$deb" Version)"
  done >"$STAMP"
  rm -rf "$x" "$work"/debs/*.deb
  log "installed: $(tr '\n' ' ' <"$STAMP")"
fi
# Sanity: both run on this libc.
"$BIN/cosign" version >/dev/null 2>&1 || die "cosign does not run here"
"$BIN/oras" version >/dev/null 2>&1 || die "oras does not run here"
