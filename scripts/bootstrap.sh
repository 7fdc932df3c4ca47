#!/usr/bin/env bash
# Creates .venv and installs smartpos with its dependencies. Idempotent: re-runs only
# the pip step when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
py="${PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'; then
  echo "smartpos needs Python 3.11 or newer (found: $("$py" --version 2>&1))" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
# Byte-compile smartpos once (cheap when nothing changed): an editable install has no
# compiled files, and where PYTHONDONTWRITEBYTECODE is set every command would compile
# every module it imports again (~90 ms of a CLI sale, docs/benchmarks.md).
compile() { .venv/bin/python -m compileall -q smartpos >/dev/null; }
trap compile EXIT
stamp=".venv/.installed${extras:+-$extras}"
fresh() { [ -f "$1" ] && [ ! pyproject.toml -nt "$1" ]; }
# The dev install (make test) contains the plain one (make demo): no second pip run.
if fresh "$stamp" || { [ -z "$extras" ] && fresh .venv/.installed-dev; }; then
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install -q -e ".[$extras]"
else
  .venv/bin/python -m pip install -q -e .
fi
touch "$stamp"
