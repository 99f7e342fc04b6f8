#!/usr/bin/env bash
# Installs everything the tests need, then runs every test (unit, web, browser, sync faults, PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
# Four workers on two cores: most tests wait on real servers, browsers and fsyncs, not on the CPU.
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${TEST_WORKERS:-4}" "$@"
