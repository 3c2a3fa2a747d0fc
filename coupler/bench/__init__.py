"""Benchmarks behind ``make bench-*``: each writes JSON and updates its section of
docs/benchmarks.md. Speed is reported, never asserted (machines are noisy)."""
