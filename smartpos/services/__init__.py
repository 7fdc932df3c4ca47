"""Application services the command line and the cashier app share (DESIGN §3.5)."""
