"""Benchmarks for Operator (not tests): each prints its figures and, where a peer exists,
the peer's figures from the same run. ``python -m bench --help``."""
