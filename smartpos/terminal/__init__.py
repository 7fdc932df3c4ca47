"""The terminal engine: transaction state machine, host link, reversals, batch, journal."""
