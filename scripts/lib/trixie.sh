# trixie.sh — sourced by ci-env.sh and supply-chain-tools.sh: fetch Debian trixie .debs
# (amd64) from the mirror configured in /etc/apt/sources.list.d/debian.sources, through a
# private apt state (sources, lists, downloaded .debs) under $CI_CACHE/trixie; the system's
# apt is untouched and nothing is installed.
#
#   trixie_fetch PKG...     the .debs of PKG... (candidate versions) into the cache; reuses a
#                           cached .deb whose sha256 matches, downloads the rest; sets the
#                           array TRIXIE_DEBS to their paths
#   trixie_extract DIR      DIR emptied, then every .deb of TRIXIE_DEBS extracted into it
#   trixie_versions         "Package=Version" of each .deb of TRIXIE_DEBS (a stamp file)
#
# Needs CI_CACHE (default /var/cache/crossplan-ci) and root. Network: the mirror only, and
# only when the lists are older than a day or a .deb is not cached yet.

TRIXIE_DIR=${CI_CACHE:-/var/cache/crossplan-ci}/trixie
TRIXIE_DEBS=()

_trixie_log() { printf '[trixie] %s\n' "$*"; }
_trixie_die() { printf '[trixie] ERROR: %s\n' "$*" >&2; exit 1; }

_trixie_apt() {
  apt-get -q -o "Dir::Etc::SourceList=$TRIXIE_DIR/trixie.sources" \
    -o Dir::Etc::SourceParts=/nonexistent -o "Dir::State::Lists=$TRIXIE_DIR/lists" \
    -o "Dir::Cache=$TRIXIE_DIR/cache" -o APT::Architectures::=amd64 \
    -o APT::Sandbox::User=root -o DPkg::Lock::Timeout=600 "$@"
}

_trixie_update() {  # _trixie_update [force]: the trixie lists, fetched when stale or missing
  local mirror
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  [[ -n $mirror ]] || _trixie_die "no URIs: line in /etc/apt/sources.list.d/debian.sources"
  mkdir -p "$TRIXIE_DIR/lists/partial" "$TRIXIE_DIR/cache/archives/partial" "$TRIXIE_DIR/debs"
  local sources
  sources=$(printf '%s\n' "Types: deb" "URIs: $mirror" "Suites: trixie" "Components: main" \
    "Architectures: amd64" "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg")
  if [[ $(cat "$TRIXIE_DIR/trixie.sources" 2>/dev/null) != "$sources" ]]; then
    printf '%s\n' "$sources" >"$TRIXIE_DIR/trixie.sources"
    set -- force
  fi
  if [[ ${1:-} == force ]] \
      || ! find "$TRIXIE_DIR/lists" -maxdepth 1 -name '*_Packages*' -mmin -1440 | grep -q .; then
    _trixie_log "fetching trixie package lists from $mirror"
    _trixie_apt update
  fi
}

_trixie_want() {  # lines "FILE SHA256" of the candidate .debs of PKG...
  _trixie_apt --print-uris download "$@" | awk '{print $2, $4}' | sed 's/ SHA256:/ /'
}

trixie_fetch() {
  (( $# )) || _trixie_die "trixie_fetch: no packages"
  mkdir -p "$TRIXIE_DIR"
  local lock
  exec {lock}>"$TRIXIE_DIR/lock"
  flock -w 900 "$lock" || _trixie_die "another trixie fetch holds $TRIXIE_DIR/lock"
  _trixie_update
  local want
  want=$(_trixie_want "$@") || { _trixie_update force; want=$(_trixie_want "$@"); }
  [[ $(wc -l <<<"$want") -eq $# ]] || _trixie_die "trixie has no candidate for one of: $*"
  TRIXIE_DEBS=()
  local file sum missing=()
  while read -r file sum; do
    TRIXIE_DEBS+=("$TRIXIE_DIR/debs/$file")
    if [[ -f $TRIXIE_DIR/debs/$file ]] \
        && [[ $(sha256sum "$TRIXIE_DIR/debs/$file" | cut -d' ' -f1) == "$sum" ]]; then
      _trixie_log "cached: $file"
    else
      missing+=("${file%%_*}")
    fi
  done <<<"$want"
  if (( ${#missing[@]} )); then
    _trixie_log "downloading ${missing[*]}"
    (cd "$TRIXIE_DIR/debs" && _trixie_apt download "${missing[@]}")
  fi
  local deb pkg old
  for deb in "${TRIXIE_DEBS[@]}"; do  # verified, and older versions of it dropped
    [[ -f $deb ]] || _trixie_die "download of $(basename "$deb") failed"
    pkg=$(basename "$deb"); pkg=${pkg%%_*}
    for old in "$TRIXIE_DIR/debs/${pkg}"_*.deb; do
      [[ $old == "$deb" ]] || rm -f "$old"
    done
  done
  exec {lock}>&-
}

trixie_extract() {
  local dir=$1 deb
  rm -rf "$dir"; mkdir -p "$dir"
  for deb in "${TRIXIE_DEBS[@]}"; do dpkg-deb -x "$deb" "$dir"; done
}

trixie_versions() {
  local deb
  for deb in "${TRIXIE_DEBS[@]}"; do
    echo "$(dpkg-deb -f "$deb" Package)=$(dpkg-deb -f "$deb" Version)"
  done
}
