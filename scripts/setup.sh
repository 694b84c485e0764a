#!/usr/bin/env bash
# Set up everything sitebeacon's tests and demo need on a Debian/Ubuntu machine:
# system packages (Chromium, Firefox ESR, and WebKitGTK's WebKitWebDriver with Xvfb for the
# browser tests, PostgreSQL, wrk for the receiver benchmark, Node.js as a second parser of the
# generated modules, nginx for the reverse-proxy example),
# a virtualenv in .venv with the project and its test extras, and a running PostgreSQL server.
# Safe to run again: every step checks first.
#
#   bash scripts/setup.sh                    everything the tests need
#   bash scripts/setup.sh --demo             only what scripts/demo.sh needs: .venv, verify extras
#   bash scripts/setup.sh --demo --chromium  the same plus Debian's chromium (demo.sh --click)
#
# A failure prints one line saying what to do, never a traceback.
set -euo pipefail
cd "$(dirname "$0")/.."

demo=0
chromium=0
for arg in "$@"; do
  case "$arg" in
    --demo) demo=1 ;;
    --chromium) chromium=1 ;;
    *) echo "setup: unknown option $arg (use --demo, --chromium)" >&2; exit 2 ;;
  esac
done

packages=()
if [ "$demo" -eq 0 ] || [ "$chromium" -eq 1 ]; then
  command -v chromium >/dev/null 2>&1 || packages+=(chromium)
fi
if [ "$demo" -eq 0 ]; then
  command -v firefox-esr >/dev/null 2>&1 || packages+=(firefox-esr)
  command -v WebKitWebDriver >/dev/null 2>&1 || packages+=(webkit2gtk-driver)
  command -v Xvfb >/dev/null 2>&1 || packages+=(xvfb)
  ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || packages+=(postgresql)
  command -v wrk >/dev/null 2>&1 || packages+=(wrk)
  command -v node >/dev/null 2>&1 || packages+=(nodejs)
  # nginx: tests/collect/test_nginx.py runs the README's reverse-proxy example for real.
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx-light)
fi
if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "setup: ${packages[*]} missing; install with apt-get as root (no sudo here)" >&2
      exit 1
    fi
    sudo="sudo"
  fi
  echo "setup: installing ${packages[*]}" >&2
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null 2>&1 ||
    ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" \
      >/tmp/sitebeacon-apt.log 2>&1; then
    echo "setup: apt-get could not install ${packages[*]} (see /tmp/sitebeacon-apt.log)" >&2
    exit 1
  fi
fi

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "setup: sitebeacon needs Python >= 3.11 ($python is not; set PYTHON=...)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
extras=test
[ "$demo" -eq 1 ] && extras=verify
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! .venv/bin/python -m pip install -q -e ".[$extras]" >/tmp/sitebeacon-pip.log 2>&1; then
  echo "setup: pip could not install sitebeacon[$extras] into .venv (see /tmp/sitebeacon-pip.log)" >&2
  exit 1
fi
