"""Alembic migrations of the worker's tables."""
