"""Card transaction receipts: the model, and renderers to plain text and ESC/POS bytes.

The ESC/POS renderer lives in ``smartpos.receipts.escpos`` and is not imported here because
python-escpos is slow to import and the text preview does not need it.
"""

from smartpos.receipts.model import Copy, Receipt, TxnKind
from smartpos.receipts.text import render_text

__all__ = ["Copy", "Receipt", "TxnKind", "render_text"]
