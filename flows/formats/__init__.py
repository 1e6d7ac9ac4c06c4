"""Readers of disk image headers, one module per family (used by flows.inspector)."""
