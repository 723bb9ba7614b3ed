#!/usr/bin/env bash
# bench-debian-image.sh — a Debian bookworm build image (rustc, cargo, gcc, make) for one
# target platform, for `plan bench --modes emulated` (no public registry needed): the
# toolchain image of Rust steps, and a base with `make` for the Go/zig images bench makes.
#
#   scripts/bench-debian-image.sh [ARCH]     # ARCH: arm64 (default), amd64, armhf, riscv64
#
# Makes `crossplan-bench/debian:bookworm-ARCH` once per machine (a second run only checks
# the name). mmdebstrap's `extract` variant only unpacks Debian's packages (a shell,
# coreutils, rustc, cargo, gcc, libc6-dev, make and their dependencies) without running
# their maintainer scripts, so nothing runs under QEMU and it takes well under a minute,
# where `--variant=minbase` (configuring every package under QEMU) takes ~14 minutes here.
# The compilers need no configuration step; `docker import` then loads the tree. The
# tarball is kept in $CROSSPLAN_CI_CACHE (default /var/cache/crossplan-ci) so a lost image
# re-imports fast. Debian's rustc (1.63 in bookworm) is the host's /usr/bin/rustc version.
set -euo pipefail

ARCH=${1:-arm64}
declare -A PLATFORM=([amd64]=linux/amd64 [arm64]=linux/arm64 [armhf]=linux/arm/v7 [riscv64]=linux/riscv64)
[[ -n ${PLATFORM[$ARCH]:-} ]] || { echo "unknown Debian arch '$ARCH'" >&2; exit 2; }
IMAGE=${CROSSPLAN_BENCH_IMAGE:-crossplan-bench/debian:bookworm-$ARCH}
CACHE=${CROSSPLAN_CI_CACHE:-/var/cache/crossplan-ci}
TAR=$CACHE/bench-debian-bookworm-$ARCH.tar
PACKAGES=dash,coreutils,grep,sed,findutils,tar,gzip,rustc,cargo,gcc,libc6-dev,make

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE"
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 3; }
mkdir -p "$CACHE"
if [[ ! -s $TAR ]]; then
  tmp=$TAR.partial
  rm -rf "$tmp"
  echo "mmdebstrap --variant=extract --arch=$ARCH ($PACKAGES) -> $TAR" >&2
  mmdebstrap --quiet --format=tar --arch="$ARCH" --variant=extract --include="$PACKAGES" \
    bookworm "$tmp"
  mv "$tmp" "$TAR"
fi
docker import --platform "${PLATFORM[$ARCH]}" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root' \
  --change 'WORKDIR /src' "$TAR" "$IMAGE" >/dev/null
echo "$IMAGE"
