#!/usr/bin/env bash
# Sets up this machine (see scripts/setup.sh: Debian 12, Ubuntu 22.04/24.04), creates the demo event in
# ./demo-data (or KIOSK_DATA) and serves the kiosk on port 8080 (or PORT), printing the addresses
# tablets can open. Run it again at any time, on any day: the demo moves to today and its
# coordinator gets a new password.
# Usage: scripts/demo.sh [--no-setup]    (--no-setup: skip the package and virtualenv check)
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${1:-}" = "--no-setup" ] || scripts/setup.sh
export KIOSK_DATA="${KIOSK_DATA:-$PWD/demo-data}"
.venv/bin/kiosk demo
echo "The demo's data live in $KIOSK_DATA. Later, reach them with:"
echo "  KIOSK_DATA=\"$KIOSK_DATA\" .venv/bin/kiosk serve      (or: .venv/bin/kiosk --data \"$KIOSK_DATA\" doctor)"
exec .venv/bin/kiosk serve --port "${PORT:-8080}"
