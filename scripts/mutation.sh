#!/usr/bin/env bash
# Mutation testing of the money code: the issuer ledger, the host's money steps and the
# terminal's journal/reversal/settlement path (docs/fault-injection.md, "Mutation testing").
#
#   scripts/mutation.sh                 # the money functions below, 2 processes
#   scripts/mutation.sh 'smartpos.host.ledger.*'   # or any mutmut name patterns
#
# mutmut works on a scratch clone of the committed tree (its mutants/ copy never mixes with
# the work tree); the venv is this repository's. Results: `mutmut results` in the clone.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)
scripts/bootstrap.sh dev,mutation
work=${SMARTPOS_MUTATION_DIR:-/tmp/smartpos-mutation}
if [ $# -eq 0 ]; then
  p='smartpos.host.processor.xǁProcessorǁ'
  e='smartpos.terminal.engine.xǁTerminalǁ'
  set -- 'smartpos.host.ledger.*' \
    'smartpos.host.processor.x__reverses__*' 'smartpos.host.processor.x_fingerprint__*' \
    "${p}process__*" "${p}_decide__*" "${p}_replay__*" "${p}_card__*" "${p}_pin__*" \
    "${p}_risk__*" "${p}_open_batch__*" "${p}_transfer_id__*" "${p}_purchase__*" \
    "${p}_void__*" "${p}_check_same_card__*" "${p}_refund__*" "${p}_reject_if_reversed__*" \
    "${p}_reversal__*" "${p}_undo_void__*" "${p}_undo_refund__*" "${p}_undo_purchase__*" "${p}host_totals__*" \
    "${p}_settle_batch__*" "${p}_settlement__*" "${p}_batch_upload__*" \
    "${e}void__*" "${e}refund__*" "${e}_money_txn__*" "${e}_make_room__*" \
    "${e}_send_money_txn__*" "${e}_finish__*" "${e}_after_failure__*" "${e}recover__*" \
    "${e}_require_no_pending_reversal__*" "${e}flush_reversals__*" "${e}_send_reversal__*" \
    "${e}_reversed__*" "${e}totals__*" "${e}settle__*" "${e}_close_batch__*" \
    "${e}_batch_upload__*" "${e}_catch_up_settled_batch__*"
fi
rm -rf "$work"
git clone -q "$here" "$work"
cd "$work"
"$here/.venv/bin/mutmut" run --max-children "${SMARTPOS_MUTATION_JOBS:-2}" "$@"
"$here/.venv/bin/mutmut" results
