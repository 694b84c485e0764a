#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set up, lint, type-check, test.
# The browser and PostgreSQL tests run here (CI=true makes them fail rather than skip
# if Chromium or the database were somehow missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
SITEBEACON_TEST_PG=$(bash .ci/postgres.sh)
export SITEBEACON_TEST_PG
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy --strict sitebeacon
.venv/bin/python -m pytest -q "$@"
