"""The API process's own Prometheus metrics (docs/metrics.md), served on
``[api] metrics_listen``."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class ApiMetrics:
    """What one ``imgworker api`` process counts."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.enqueued_without_worker = Counter(
            "imgworker_api_tasks_without_worker",
            "Tasks this API enqueued while no worker consumed the task queue.",
            registry=registry,
        )

    def task_without_worker(self) -> None:
        """A task was enqueued while no worker consumed the queue."""
        self.enqueued_without_worker.inc()
