#!/usr/bin/env bash
# Makes sure the local PostgreSQL server answers on 127.0.0.1:5432 (the PostgreSQL-backed
# tests need it). Starts the Debian cluster when it is installed but down.
set -uo pipefail
pg_up() { .venv/bin/python - <<'PY' 2>/dev/null
import psycopg
psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=postgres", connect_timeout=3).close()
PY
}
if pg_up; then exit 0; fi
if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 30); do pg_up && exit 0; sleep 1; done
fi
if [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started" >&2
  exit 1
fi
echo "warning: PostgreSQL is not reachable; PostgreSQL-backed tests will fail" >&2
