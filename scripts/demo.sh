#!/usr/bin/env bash
# Sets up a fresh machine, creates the demo event in ./demo-data and serves the kiosk on port 8080.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export KIOSK_DATA="${KIOSK_DATA:-$PWD/demo-data}"
.venv/bin/kiosk demo
exec .venv/bin/kiosk serve --port "${PORT:-8080}"
