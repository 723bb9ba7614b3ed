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

if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
.venv/bin/pip install -q --disable-pip-version-check -e '.[dev,toolchains,bench]'

.venv/bin/ruff check crossplan tests benchmarks
.venv/bin/mypy
.venv/bin/lint-imports
# Integration tests must not be skipped for lack of a component: fail instead.
CROSSPLAN_REQUIRE_ALL=1 .venv/bin/pytest -p no:cacheprovider tests benchmarks \
  --benchmark-disable -q --durations=25 "$@"
