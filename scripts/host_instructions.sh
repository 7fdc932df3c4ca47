#!/usr/bin/env bash
# Machine instructions per purchase on the host's request path (scripts/host_cpu.py under
# valgrind's callgrind). Unlike seconds, instruction counts do not drift with the shared VM's
# speed: use this for A/B comparisons of a change (±1 % between runs of the same commit).
#
# Usage (from the repository root; ~1.5 min):  scripts/host_instructions.sh [checkout]
# The count is the difference between a run of 40 and of 140 rounds of 8 terminals, so the
# set-up (host creation, sign-on, pre-built requests) cancels out.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
checkout="$(cd "${1:-$root}" && pwd)"
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
count() {
    (cd "$checkout" && PYTHONPATH="$checkout" valgrind --tool=callgrind \
        --callgrind-out-file="$work/out.$1" "$root/.venv/bin/python" scripts/host_cpu.py \
        --terminals 8 --rounds "$1" >/dev/null 2>"$work/err.$1")
    grep -a -o "Collected : [0-9]*" "$work/err.$1" | grep -o "[0-9]*"
}
small=$(count 40)
large=$(count 140)
echo "$checkout: $(( (large - small) / 800 )) instructions a purchase"
