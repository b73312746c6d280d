"""Fault injection for tests and benchmarks, on loopback only."""
