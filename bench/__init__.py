"""Benchmarks (`make bench`); results in BENCHMARKS.md."""
