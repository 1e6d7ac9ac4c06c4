"""The worker's Prometheus metrics, named and labelled as ``docs/metrics.md`` says.

One :class:`Metrics` per process owns its registry (not prometheus-client's global one, so
tests can build several) and is the flow's :class:`~flows.observer.FlowObserver`. Labels are
low-cardinality only: methods, stores, steps, results, reasons and check names — never an
image id, task id or URL.
"""

from __future__ import annotations

import math
import platform
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from flows.states import AttemptStatus, StepResult

#: A task or a step takes from well under a second (a tiny copy) to hours (a huge conversion).
DURATION_BUCKETS: Final = (
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
)  # fmt: skip
#: Queue wait runs from milliseconds (an idle pool) to many minutes (a backlog).
QUEUE_WAIT_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
)  # fmt: skip
DISTRIBUTION = "imgworker"


class Metrics:
    """Every imgworker metric, plus the hooks the daemon and the flows report through.

    All methods are cheap and thread-safe (prometheus-client locks each sample), so flow
    steps may call them from worker threads.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, staging_dir: Path | None = None
    ) -> None:
        """Register on ``registry``, or on a new one with the process and platform collectors.

        ``staging_dir``, when given, is measured for ``imgworker_staging_free_bytes`` at each
        scrape.
        """
        if registry is None:
            registry = CollectorRegistry()
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
        self.registry = registry
        self._staging_dir = staging_dir

        self.build_info = Gauge(
            "imgworker_build_info", "Which build runs.", ["version", "python"], registry=registry
        )
        self.build_info.labels(version=_package_version(), python=platform.python_version()).set(1)

        self.tasks_received = Counter(
            "imgworker_tasks_received",
            "Messages taken from the queue (before validation; method=unknown when malformed).",
            ["method"],
            registry=registry,
        )
        self.tasks_succeeded = Counter(
            "imgworker_tasks_succeeded",
            "Tasks that ended success.",
            ["method"],
            registry=registry,
        )
        self.tasks_failed = Counter(
            "imgworker_tasks_failed",
            "Tasks that ended failure, by the error's label.",
            ["method", "reason"],
            registry=registry,
        )
        self.tasks_retried = Counter(
            "imgworker_tasks_retried",
            "Transient failures sent back for another attempt.",
            ["method", "reason"],
            registry=registry,
        )
        self.tasks_dead_lettered = Counter(
            "imgworker_tasks_dead_lettered",
            "Messages rejected to the dead-letter queue.",
            ["reason"],
            registry=registry,
        )
        self.in_progress = Gauge(
            "imgworker_tasks_in_progress", "Tasks this worker is running now.", registry=registry
        )
        self.step_duration = Histogram(
            "imgworker_step_duration_seconds",
            "Duration of each flow step.",
            ["step", "result"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.task_duration = Histogram(
            "imgworker_task_duration_seconds",
            "From start of work to the end of the attempt (success, failure or retry).",
            ["method", "result"],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.queue_wait_duration = Histogram(
            "imgworker_queue_wait_seconds",
            "From the message's timestamp (enqueue) to the start of work.",
            ["method"],
            buckets=QUEUE_WAIT_BUCKETS,
            registry=registry,
        )
        self.bytes_downloaded_count = Counter(
            "imgworker_bytes_downloaded",
            "Bytes brought into staging.",
            ["method"],
            registry=registry,
        )
        self.bytes_written_count = Counter(
            "imgworker_bytes_written", "Bytes written into a store.", ["store"], registry=registry
        )
        self.bytes_skipped_count = Counter(
            "imgworker_bytes_skipped",
            "Zero bytes not written (holes, all-zero chunks).",
            ["store"],
            registry=registry,
        )
        self.store_writes = Counter(
            "imgworker_store_writes",
            "Store writes ended by success or failure.",
            ["store", "result"],
            registry=registry,
        )
        self.lock_takeovers = Counter(
            "imgworker_lock_takeovers",
            "Tasks taken over from a holder whose lease expired.",
            registry=registry,
        )
        self.safety_refusals = Counter(
            "imgworker_safety_refusals",
            "Images refused by a safety check.",
            ["check"],
            registry=registry,
        )
        self.consumer_attached_gauge = Gauge(
            "imgworker_consumer_attached",
            "1 while a consumer is attached to the queue.",
            registry=registry,
        )
        self.draining_gauge = Gauge(
            "imgworker_draining", "1 once a drain has started.", registry=registry
        )
        self.deletions_pending = Gauge(
            "imgworker_deletions_pending",
            "Delete tasks not finished yet (as this worker's sweeper last counted them).",
            registry=registry,
        )
        self.notifications_sent = Counter(
            "imgworker_notifications_sent",
            "Notifications this process published (or logged), by event type.",
            ["event_type"],
            registry=registry,
        )
        self.notifications_undelivered = Gauge(
            "imgworker_notifications_undelivered",
            "Notifications recorded but not published yet, pool-wide (as this worker's relay "
            "last counted them).",
            registry=registry,
        )
        self.notifications_publish_failures = Counter(
            "imgworker_notifications_publish_failures",
            "Attempts to publish a notification that failed (the broker down, slow or refusing).",
            registry=registry,
        )
        if staging_dir is not None:
            self.staging_free_bytes = Gauge(
                "imgworker_staging_free_bytes",
                "Free bytes in the staging directory (sampled on scrape; NaN if unreadable).",
                registry=registry,
            )
            self.staging_free_bytes.set_function(self._staging_free)

    # FlowObserver

    def step_finished(self, step: str, seconds: float, result: StepResult) -> None:
        """A flow step ended, or its revert did: ``result`` says how."""
        self.step_duration.labels(step=step, result=result).observe(max(seconds, 0.0))

    def bytes_downloaded(self, method: str, count: int) -> None:
        """Bytes brought into staging."""
        self.bytes_downloaded_count.labels(method=method).inc(count)

    def bytes_written(self, store: str, count: int) -> None:
        """Bytes written to a store."""
        self.bytes_written_count.labels(store=store).inc(count)

    def bytes_skipped(self, store: str, count: int) -> None:
        """Zero bytes not written to a store."""
        self.bytes_skipped_count.labels(store=store).inc(count)

    def store_write(self, store: str, result: str) -> None:
        """A store write ended with ``success`` or ``failure``."""
        self.store_writes.labels(store=store, result=result).inc()

    def safety_refusal(self, check: str) -> None:
        """A safety check refused an image."""
        self.safety_refusals.labels(check=check).inc()

    def lock_taken_over(self) -> None:
        """A task whose holder stopped heartbeating was taken over."""
        self.lock_takeovers.inc()

    def phase_started(self, phase: str, total_bytes: int | None) -> None:
        """Not measured: the byte counters above already count the bytes."""

    def phase_advanced(self, phase: str, count: int) -> None:
        """Not measured: the byte counters above already count the bytes."""

    # The daemon

    def task_received(self, method: str) -> None:
        """A message was taken from the queue (``unknown`` method when it does not parse)."""
        self.tasks_received.labels(method=method).inc()

    def task_finished(
        self, method: str, status: AttemptStatus, reason: str, seconds: float
    ) -> None:
        """An attempt ended with ``status`` after ``seconds`` of work.

        ``reason`` labels failures and retries (the error's label); it is ignored on success.
        """
        if status == AttemptStatus.SUCCESS:
            self.tasks_succeeded.labels(method=method).inc()
        elif status == AttemptStatus.FAILURE:
            self.tasks_failed.labels(method=method, reason=reason).inc()
        elif status in (AttemptStatus.RETRY, AttemptStatus.DEFERRED):
            self.tasks_retried.labels(method=method, reason=reason).inc()
        else:
            raise ValueError(f"task status {status!r} is not one of {', '.join(AttemptStatus)}")
        self.task_duration.labels(method=method, result=status).observe(max(seconds, 0.0))

    def dead_lettered(self, reason: str) -> None:
        """A message was rejected to the dead-letter queue for ``reason``."""
        self.tasks_dead_lettered.labels(reason=reason).inc()

    def queue_wait(self, method: str, seconds: float) -> None:
        """A task waited ``seconds`` between enqueue and the start of work."""
        # Clocks of the publisher and this host may disagree; a negative wait means "none".
        self.queue_wait_duration.labels(method=method).observe(max(seconds, 0.0))

    def consumer_attached(self, value: bool) -> None:
        """Whether a consumer is attached to the queue now."""
        self.consumer_attached_gauge.set(1 if value else 0)

    def pending_deletions(self, count: int) -> None:
        """How many delete tasks wait to be done, pool-wide."""
        self.deletions_pending.set(count)

    # The notification relay

    def notification_sent(self, event_type: str) -> None:
        """One notification was published."""
        self.notifications_sent.labels(event_type=event_type).inc()

    def notifications_waiting(self, count: int) -> None:
        """How many notifications wait to be published, pool-wide."""
        self.notifications_undelivered.set(count)

    def notification_failed(self) -> None:
        """An attempt to publish a notification failed."""
        self.notifications_publish_failures.inc()

    def draining(self, value: bool) -> None:
        """Whether a drain has started."""
        self.draining_gauge.set(1 if value else 0)

    def _staging_free(self) -> float:
        assert self._staging_dir is not None
        try:
            return float(shutil.disk_usage(self._staging_dir).free)
        except OSError:
            # A scrape must not fail because staging is gone; /readyz reports that.
            return math.nan


def _package_version() -> str:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown"
