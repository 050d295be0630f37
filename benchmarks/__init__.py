"""Benchmarks anyone can rerun; each script's docstring says what it measures and how to run it."""
