#!/usr/bin/env bash
# The whole test suite: lint, types, unit, integration, PostgreSQL, fault-injection and
# browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh dev
scripts/ensure-postgres.sh
scripts/ensure-chromium.sh

echo "== ruff"; .venv/bin/ruff check smartpos tests scripts && .venv/bin/ruff format --check smartpos tests scripts
echo "== mypy"; .venv/bin/mypy
echo "== pytest"
set +e
.venv/bin/python -m pytest -n "${SMARTPOS_TEST_WORKERS:-2}" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure for this project" >&2
  exit 1
fi
exit "$rc"
