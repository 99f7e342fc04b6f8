#!/usr/bin/env bash
# Everything a fresh machine needs: system packages (Chromium, poppler, fribidi for Thai
# shaping), a virtualenv in .venv with the kiosk installed, and compiled translations.
# Usage: scripts/setup.sh [--test|--bench]    (--test adds what the test suite and the benchmarks
# need; --bench is the same)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1
[ "${1:-}" = "--bench" ] && want_test=1

packages=(libfribidi0 libraqm0)
# wrk: the load generator of the door benchmarks, whose smoke runs are part of the suite
[ "$want_test" = 1 ] && packages+=(chromium poppler-utils postgresql-15 wrk)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ] && command -v apt-get >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "Installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
if [ "$want_test" = 1 ]; then
  .venv/bin/python -m pip install -q -e ".[test]"
else
  .venv/bin/python -m pip install -q -e .
fi
.venv/bin/python -m kiosk.i18n compile
