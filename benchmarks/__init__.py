"""Benchmark scripts (run as files; a package so they can share modules)."""
