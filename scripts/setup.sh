#!/usr/bin/env bash
# Set up everything sitebeacon's tests and demo need on a Debian/Ubuntu machine:
# system packages (Chromium, Firefox ESR, and WebKitGTK's WebKitWebDriver with Xvfb for the
# browser tests, PostgreSQL, wrk for the receiver benchmark, Node.js as a second parser of the
# generated modules, nginx for the reverse-proxy example),
# a virtualenv in .venv with the project and its test extras, and a running PostgreSQL server.
# Safe to run again: every step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=()
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
command -v firefox-esr >/dev/null 2>&1 || packages+=(firefox-esr)
command -v WebKitWebDriver >/dev/null 2>&1 || packages+=(webkit2gtk-driver)
command -v Xvfb >/dev/null 2>&1 || packages+=(xvfb)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || packages+=(postgresql)
command -v wrk >/dev/null 2>&1 || packages+=(wrk)
command -v node >/dev/null 2>&1 || packages+=(nodejs)
# nginx: tests/collect/test_nginx.py runs the README's reverse-proxy example for real.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || packages+=(nginx-light)
if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${packages[*]}" >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}" >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q -e '.[test]'
