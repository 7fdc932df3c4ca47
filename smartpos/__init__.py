"""smartpos — smart POS terminal, acquirer sandbox host and back office."""

__version__ = "0.1.0"
