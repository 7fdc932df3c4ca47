"""The acquirer sandbox: ISO 8583 over TLS, issuer ledger, settlement."""
