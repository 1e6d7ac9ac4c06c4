"""Backoff sleeps recorded instead of waited, for unit tests of retry logic."""

from __future__ import annotations

from types import ModuleType

import pytest


def record_sleeps(monkeypatch: pytest.MonkeyPatch, module: ModuleType) -> list[float]:
    """Replace ``module``'s ``asyncio.sleep`` by one that returns at once; return the waits."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    monkeypatch.setattr(module.asyncio, "sleep", sleep)
    return waits
