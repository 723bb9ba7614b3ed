#!/usr/bin/env bash
# bench-debian-image.sh — a Debian bookworm build image (rustc, cargo, gcc, make) for one
# target platform, for `plan bench --modes emulated` (no public registry needed): the
# toolchain_image of Rust steps, and a base with `make` for the Go/zig images bench makes.
#
#   scripts/bench-debian-image.sh [ARCH]     # ARCH: arm64 (default), amd64, armhf, ...
#
# Makes `crossplan-bench/debian:bookworm-ARCH` once per machine (a second run only checks
# the name): mmdebstrap builds a minbase rootfs with rustc, cargo, gcc, libc6-dev and make
# from Debian's packages (their maintainer scripts run under QEMU for a foreign ARCH: this
# takes minutes), then `docker import` loads it. The rootfs tarball is kept in
# $CROSSPLAN_CI_CACHE (default /var/cache/crossplan-ci) so a lost image re-imports fast.
# Debian's rustc (1.63 in bookworm) is the same version as the host's /usr/bin/rustc.
set -euo pipefail

ARCH=${1:-arm64}
declare -A PLATFORM=([amd64]=linux/amd64 [arm64]=linux/arm64 [armhf]=linux/arm/v7 [riscv64]=linux/riscv64)
[[ -n ${PLATFORM[$ARCH]:-} ]] || { echo "unknown Debian arch '$ARCH'" >&2; exit 2; }
IMAGE=${CROSSPLAN_BENCH_IMAGE:-crossplan-bench/debian:bookworm-$ARCH}
CACHE=${CROSSPLAN_CI_CACHE:-/var/cache/crossplan-ci}
TAR=$CACHE/bench-debian-bookworm-$ARCH.tar

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
  echo "$IMAGE"
  exit 0
fi
command -v mmdebstrap >/dev/null || { echo "needs mmdebstrap (apt-get install mmdebstrap)" >&2; exit 3; }
mkdir -p "$CACHE"
if [[ ! -s $TAR ]]; then
  tmp=$TAR.partial
  rm -rf "$tmp"
  echo "mmdebstrap --arch=$ARCH (rustc, cargo, gcc, libc6-dev, make) -> $TAR (minutes under QEMU)" >&2
  mmdebstrap --quiet --format=tar --arch="$ARCH" --variant=minbase --include=rustc,cargo,gcc,libc6-dev,make \
    bookworm "$tmp"
  mv "$tmp" "$TAR"
fi
docker import --platform "${PLATFORM[$ARCH]}" \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'WORKDIR /src' "$TAR" "$IMAGE" >/dev/null
echo "$IMAGE"
