"""Benchmarks run by `make bench`: performance figures live here, never as timed assertions in tests."""
