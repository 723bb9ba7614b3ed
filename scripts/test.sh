#!/usr/bin/env bash
# Install everything the tests need (system packages, Docker engine, registry, QEMU,
# cross toolchains, the package itself) and run every check: ruff, mypy, import layers,
# pytest (unit + integration, nothing skipped) and the benchmarks as smoke tests.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ci-env.sh install
bash scripts/ci-env.sh start
bash scripts/supply-chain-tools.sh   # cosign + oras (Debian trixie) for the attestation tests
trap 'bash scripts/reapi-env.sh down || true; bash scripts/ci-env.sh stop || true' EXIT
# The REAPI cluster (BuildGrid + two buildbox workers) for tests/integration/test_reapi_*.
bash scripts/reapi-env.sh up

# The virtualenv is a cache keyed by pyproject.toml's bytes (as CI systems cache one by
# their lock file): the same dependencies keep the same files at the same paths run after
# run, so the toolchain caches the tests share (zig's, Go's, the REAPI workers') stay warm;
# a changed pyproject.toml gets a new venv from scratch. `.venv` links to it.
if [ ! -e .venv ]; then
  cache=${CROSSPLAN_CI_VENVS:-/var/cache/crossplan-ci/venvs}
  venv=$cache/$(sha256sum pyproject.toml | cut -c1-16)-py$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  mkdir -p "$cache"
  if [ ! -x "$venv/bin/python" ] || [ ! -f "$venv/.complete" ]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  ln -s "$venv" .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[dev,toolchains,bench]'
touch .venv/.complete

.venv/bin/ruff check crossplan tests benchmarks
.venv/bin/mypy
.venv/bin/lint-imports
# Integration tests must not be skipped for lack of a component: fail instead.
CROSSPLAN_REQUIRE_ALL=1 .venv/bin/pytest -p no:cacheprovider tests benchmarks \
  --benchmark-disable -q --durations=25 "$@"
