"""Benchmarks (``smartpos bench ...``)."""
