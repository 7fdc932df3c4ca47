"""An independent ISO 8583:1987 host for testing smartpos against: its own field spec
(spec87.py, from the standard's field definitions) on pyiso8583, its own small ledger
(host.py), nothing of smartpos."""
