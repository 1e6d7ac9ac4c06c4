"""Hooks through which a flow reports what it does (the worker turns them into metrics)."""

from __future__ import annotations

from typing import Protocol

from flows.states import StepResult


class FlowObserver(Protocol):
    """Receives a flow's measurements; every method must be cheap and thread-safe."""

    def step_finished(self, step: str, seconds: float, result: StepResult) -> None:
        """A step ended (or its revert did): ``result`` says how."""

    def phase_started(self, phase: str, total_bytes: int | None) -> None:
        """Work over bytes began: ``stage``, ``convert``, ``store:NAME`` or ``checksums``.

        The first three are steps; ``checksums`` (the stored data's hashes) runs beside the
        store writes. ``total_bytes`` is how many bytes it will go through, when known (a
        download may not say).
        """

    def phase_advanced(self, phase: str, count: int) -> None:
        """``count`` more bytes of ``phase`` are done (zeros skipped count as done)."""

    def bytes_downloaded(self, method: str, count: int) -> None:
        """Bytes brought into staging."""

    def bytes_written(self, store: str, count: int) -> None:
        """Bytes written to a store."""

    def bytes_skipped(self, store: str, count: int) -> None:
        """Zero bytes not written to a store."""

    def store_write(self, store: str, result: str) -> None:
        """A store write ended with ``success`` or ``failure``."""

    def safety_refusal(self, check: str) -> None:
        """A safety check refused an image."""

    def lock_taken_over(self) -> None:
        """A task whose holder stopped heartbeating was taken over."""


class NullObserver:
    """An observer that ignores everything (the default outside the daemon)."""

    def step_finished(self, step: str, seconds: float, result: StepResult) -> None:
        """Ignore."""

    def phase_started(self, phase: str, total_bytes: int | None) -> None:
        """Ignore."""

    def phase_advanced(self, phase: str, count: int) -> None:
        """Ignore."""

    def bytes_downloaded(self, method: str, count: int) -> None:
        """Ignore."""

    def bytes_written(self, store: str, count: int) -> None:
        """Ignore."""

    def bytes_skipped(self, store: str, count: int) -> None:
        """Ignore."""

    def store_write(self, store: str, result: str) -> None:
        """Ignore."""

    def safety_refusal(self, check: str) -> None:
        """Ignore."""

    def lock_taken_over(self) -> None:
        """Ignore."""


class Tee:
    """Hands every report to each of ``observers`` in turn (the flow's metrics or terminal,
    and the import's own :class:`~flows.progress.Progress`)."""

    def __init__(self, *observers: FlowObserver) -> None:
        self._observers = observers

    def step_finished(self, step: str, seconds: float, result: StepResult) -> None:
        """Forward."""
        for observer in self._observers:
            observer.step_finished(step, seconds, result)

    def phase_started(self, phase: str, total_bytes: int | None) -> None:
        """Forward."""
        for observer in self._observers:
            observer.phase_started(phase, total_bytes)

    def phase_advanced(self, phase: str, count: int) -> None:
        """Forward."""
        for observer in self._observers:
            observer.phase_advanced(phase, count)

    def bytes_downloaded(self, method: str, count: int) -> None:
        """Forward."""
        for observer in self._observers:
            observer.bytes_downloaded(method, count)

    def bytes_written(self, store: str, count: int) -> None:
        """Forward."""
        for observer in self._observers:
            observer.bytes_written(store, count)

    def bytes_skipped(self, store: str, count: int) -> None:
        """Forward."""
        for observer in self._observers:
            observer.bytes_skipped(store, count)

    def store_write(self, store: str, result: str) -> None:
        """Forward."""
        for observer in self._observers:
            observer.store_write(store, result)

    def safety_refusal(self, check: str) -> None:
        """Forward."""
        for observer in self._observers:
            observer.safety_refusal(check)

    def lock_taken_over(self) -> None:
        """Forward."""
        for observer in self._observers:
            observer.lock_taken_over()
