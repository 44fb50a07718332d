"""Benchmarks of issue 7 (run with `python -m tests.benchmarks`); not collected by pytest (no test_ modules)."""
