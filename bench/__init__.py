"""Benchmarks: each scenario starts the real service and measures it from outside."""
