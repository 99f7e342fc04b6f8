#!/usr/bin/env bash
# Everything a fresh machine needs: system packages (fribidi and raqm for Thai shaping; for the tests
# Chromium, poppler and PostgreSQL 15), a virtualenv in .venv with the kiosk installed, and compiled
# translations.
#
# Written for Debian 12 (bookworm), whose package names it installs with apt-get; Ubuntu 22.04 and
# 24.04 have the same names except postgresql-15 (install it from apt.postgresql.org) and chromium
# (a snap there: the tests expect /usr/bin/chromium). Elsewhere (another Linux, macOS, Windows)
# install the packages below by hand, then run this again: it only says what it cannot install.
#
# Usage: scripts/setup.sh [--test|--bench]    (--test adds what the test suite and the benchmarks
# need, wrk included; --bench is the same)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1
[ "${1:-}" = "--bench" ] && want_test=1

packages=(libfribidi0 libraqm0)
# wrk: the load generator of the door benchmarks, whose smoke runs are part of the suite
[ "$want_test" = 1 ] && packages+=(chromium poppler-utils postgresql-15 wrk)

system_name() {
  if [ -r /etc/os-release ]; then . /etc/os-release; echo "${PRETTY_NAME:-${ID:-unknown}}"; else uname -s; fi
}

supported() {
  [ -r /etc/os-release ] || return 1
  . /etc/os-release
  case "${ID:-}:${VERSION_ID:-}" in debian:12|ubuntu:22.04|ubuntu:24.04) return 0 ;; *) return 1 ;; esac
}

# apt-get refuses to run while another apt (often the automatic updates after boot) holds its lock:
# wait for it, saying so, instead of failing with "Could not get lock".
wait_for_apt() {
  local locks=(/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock) waited=0
  command -v fuser >/dev/null || return 0   # apt-get itself waits too (DPkg::Lock::Timeout below)
  while $sudo fuser "${locks[@]}" >/dev/null 2>&1; do
    [ "$waited" = 0 ] && echo "Another program is installing packages (often the automatic updates): waiting for it to finish..."
    sleep 5
    waited=$((waited + 5))
    if [ "$waited" -ge 1800 ]; then
      echo "Packages are still being installed by another program after 30 minutes. Try again later." >&2
      exit 1
    fi
  done
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    supported || echo "Note: this set-up is written for Debian 12 and Ubuntu 22.04/24.04; this is $(system_name). If a package is not found, install its equivalent by hand: ${missing[*]}"
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "Installing system packages: ${missing[*]}"
    wait_for_apt
    $sudo apt-get -o DPkg::Lock::Timeout=1800 update -qq
    wait_for_apt
    DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=1800 install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  else
    echo "No apt-get on $(system_name): install these yourself (names as on Debian 12): ${missing[*]}" >&2
  fi
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
