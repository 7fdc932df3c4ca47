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
  h='smartpos.host'
  p="$h.processor.xǁProcessorǁ"
  c="$h.cardsteps.xǁCardStepsǁ"
  r="$h.reversal.xǁReversalStepsǁ"
  s="$h.settlement.xǁSettlementStepsǁ"
  b="$h.steps.xǁStepsǁ"
  e='smartpos.terminal.engine.xǁTerminalǁ'
  j='smartpos.terminal.journal.xǁJournalǁ'
  set -- 'smartpos.host.ledger.*' \
    "$h.steps.x__reverses__*" "$h.processor.x_fingerprint__*" \
    "${p}process__*" "${p}_decide__*" "${p}_replay__*" "${c}_card__*" "${c}_pin__*" \
    "${c}_risk__*" "${b}_open_batch__*" "${b}_transfer_id__*" "${p}_purchase__*" \
    "${p}_void__*" "${p}_check_same_card__*" "${p}_refund__*" "${r}_reject_if_reversed__*" \
    "${r}_reversal__*" "${r}_undo_void__*" "${r}_undo_refund__*" "${r}_undo_purchase__*" \
    "${s}host_totals__*" "${s}_settle_batch__*" "${s}_settlement__*" "${s}_batch_upload__*" \
    'smartpos.protocol.messages.xǁSettlementTotalsǁof__*' \
    "${e}void__*" "${e}refund__*" "${e}_money_txn__*" "${e}_make_room__*" \
    'smartpos.terminal.orders.x_repeated__*' \
    "${e}_send_money_txn__*" "${e}_after_failure__*" "${e}require_no_pending_reversal__*" \
    "${e}_catch_up_settled_batch__*" \
    "${j}open_request__*" "${j}finish__*" "${j}make_pending__*" "${j}recover__*" \
    "${j}reversed__*" "${j}totals__*" "${j}close_batch__*" \
    'smartpos.terminal.reversals.x_flush_reversals__*' 'smartpos.terminal.reversals.x__send_reversal__*' \
    'smartpos.terminal.settlement.x_settle__*' 'smartpos.terminal.settlement.x__batch_upload__*'
fi
rm -rf "$work"
git clone -q "$here" "$work"
cd "$work"
"$here/.venv/bin/mutmut" run --max-children "${SMARTPOS_MUTATION_JOBS:-2}" "$@"
"$here/.venv/bin/mutmut" results
