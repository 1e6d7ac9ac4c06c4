"""Metrics: the names, labels and types of docs/metrics.md move as the hooks are called."""

from __future__ import annotations

import math
import re
import threading
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import flows.import_flow
from flows.engine import Flow, FlowFailed
from flows.events import EventType
from flows.observer import FlowObserver
from flows.states import AttemptStatus, StepResult
from flows.steps.store import Activation, StoreStep
from worker.api.metrics import ApiMetrics
from worker.cache.errors import FillReason
from worker.cache.metrics import CacheMetrics, EvictReason, MissPath, ServedFrom, SkipReason
from worker.daemon.messages import RejectReason
from worker.daemon.metrics import Metrics

CONTRACT = Path(__file__).parents[2] / "docs" / "metrics.md"
#: Where docs/metrics.md turns from the worker's metrics to the API process's.
API_SECTION = "## `imgworker api`: the image cache, and tasks without a worker"
UUID = "0b6d3c54-5f0e-4b8a-9f43-2f7c1e8a9d10"
ID_LIKE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-|://|^req-")


def scrape(metrics: Metrics) -> dict[str, list[Sample]]:
    """Every sample of the registry, by family name, as Prometheus would parse it."""
    text = generate_latest(metrics.registry).decode()
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(families: dict[str, list[Sample]], sample: str, **labels: str) -> float | None:
    """The value of the sample named ``sample`` with exactly ``labels``, or None."""
    family = re.sub(r"_(total|bucket|count|sum)$", "", sample)
    for found in families.get(family, []):
        if found.name == sample and found.labels == labels:
            return found.value
    return None


def drive_one_import(metrics: Metrics) -> None:
    """What the daemon and a flow report for one web-download to two stores."""
    metrics.task_received("web-download")
    metrics.queue_wait("web-download", 0.25)
    metrics.in_progress.inc()
    for step in ("lock", "stage", "inspect", "convert", "store:central", "store:dcn0", "complete"):
        metrics.step_finished(step, 1.5, StepResult.SUCCESS)
    metrics.bytes_downloaded("web-download", 1000)
    metrics.bytes_written("central", 600)
    metrics.bytes_skipped("central", 400)
    metrics.store_write("central", "success")
    metrics.store_write("dcn0", "failure")
    metrics.in_progress.dec()
    metrics.task_finished("web-download", "success", "", 12.0)


def test_is_a_flow_observer() -> None:
    observer: FlowObserver = Metrics()
    observer.step_finished("stage", 0.1, StepResult.SUCCESS)


def test_each_metric_has_its_documented_type() -> None:
    families = {
        family.name: family.type
        for family in text_string_to_metric_families(generate_latest(Metrics().registry).decode())
    }
    assert families["imgworker_build_info"] == "gauge"
    assert families["imgworker_tasks_received"] == "counter"
    assert families["imgworker_tasks_in_progress"] == "gauge"
    assert families["imgworker_step_duration_seconds"] == "histogram"
    assert families["imgworker_task_duration_seconds"] == "histogram"
    assert families["imgworker_queue_wait_seconds"] == "histogram"
    assert families["imgworker_lock_takeovers"] == "counter"
    assert families["imgworker_consumer_attached"] == "gauge"
    assert families["imgworker_draining"] == "gauge"
    assert families["imgworker_notifications_sent"] == "counter"
    assert families["imgworker_notifications_undelivered"] == "gauge"
    assert families["imgworker_notifications_publish_failures"] == "counter"


def _contract(api: bool = False) -> list[str]:
    """The lines of docs/metrics.md about the worker (or, with ``api``, the API process)."""
    worker, _, api_part = CONTRACT.read_text().partition(API_SECTION)
    return (api_part if api else worker).splitlines()


def documented_metrics(api: bool = False) -> dict[str, tuple[str, set[str]]]:
    """docs/metrics.md's table: metric name to (type, label names)."""
    table: dict[str, tuple[str, set[str]]] = {}
    for line in _contract(api):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`imgworker_"):
            kind = cells[1].split()[0]
            table[cells[0].strip("`")] = (kind, set(re.findall(r"`(\w+)`", cells[2])))
    return table


def test_the_documented_table_matches_the_registry(tmp_path: Path) -> None:
    metrics = Metrics(staging_dir=tmp_path)
    drive_one_import(metrics)
    metrics.task_finished("web-download", "failure", "store", 1.0)
    metrics.task_finished("web-download", "retry", "source", 1.0)
    metrics.dead_lettered("bad_json")
    metrics.safety_refusal("backing_file")
    metrics.notification_sent("image.upload")
    metrics.notifications_waiting(3)
    metrics.notification_failed()
    registered: dict[str, tuple[str, set[str]]] = {}
    for family in metrics.registry.collect():
        if family.name.startswith("imgworker_"):
            name = family.name + ("_total" if family.type == "counter" else "")
            labels = {key for sample in family.samples for key in sample.labels} - {"le"}
            registered[name] = (family.type, labels)
    assert registered == documented_metrics()


def documented_values(api: bool = False) -> dict[tuple[str, str], list[str]]:
    """docs/metrics.md's "Label values" table: (metric, label) to the values, in order."""
    table: dict[tuple[str, str], list[str]] = {}
    for line in _contract(api):
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`imgworker_"):
            table[(cells[0].strip("`"), cells[1].strip("`"))] = re.findall(r"`([^`]+)`", cells[2])
    return table


def flow_step_names() -> list[str]:
    """Every step name the import flow can run, a store step as ``store:NAME``."""
    names = []
    for candidate in vars(flows.import_flow).values():
        if not isinstance(candidate, type) or not candidate.__module__.startswith("flows.steps."):
            continue
        if candidate is StoreStep:
            names.append(StoreStep("NAME", activation=Activation.NEVER).name)
        elif isinstance(getattr(candidate, "name", None), str):
            names.append(candidate.name)
    return names


def test_documented_label_values_are_the_declared_ones() -> None:
    documented = documented_values()
    assert documented[("imgworker_step_duration_seconds", "result")] == list(StepResult)
    assert documented[("imgworker_task_duration_seconds", "result")] == list(AttemptStatus)
    assert documented[("imgworker_tasks_dead_lettered_total", "reason")] == list(RejectReason)
    assert documented[("imgworker_notifications_sent_total", "event_type")] == list(EventType)
    assert sorted(documented[("imgworker_step_duration_seconds", "step")]) == sorted(
        flow_step_names()
    )
    assert {metric for metric, _label in documented} <= set(documented_metrics())


class _Step:
    def __init__(self, name: str, fail: bool = False, fail_revert: bool = False) -> None:
        self.name, self._fail, self._fail_revert = name, fail, fail_revert

    async def execute(self, ctx: object) -> None:
        if self._fail:
            raise RuntimeError("execute failed")

    async def revert(self, ctx: object, error: BaseException) -> None:
        if self._fail_revert:
            raise RuntimeError("revert failed")


async def test_the_engine_reports_only_declared_step_results() -> None:
    metrics = Metrics()
    steps = [_Step("lock"), _Step("stage", fail_revert=True), _Step("store:central", fail=True)]
    with pytest.raises(FlowFailed):
        await Flow("test", steps).run(None, metrics)
    results = {
        sample.labels["result"]
        for sample in scrape(metrics)["imgworker_step_duration_seconds"]
        if sample.name.endswith("_count")
    }
    assert results == set(StepResult)


def test_build_info_names_version_and_python() -> None:
    (sample,) = scrape(Metrics())["imgworker_build_info"]
    assert sample.value == 1
    assert sample.labels["version"] == "0.1.0"
    assert re.fullmatch(r"3\.\d+\.\d+.*", sample.labels["python"])


def test_one_import_moves_the_counters() -> None:
    metrics = Metrics()
    drive_one_import(metrics)
    f = scrape(metrics)
    assert value(f, "imgworker_tasks_received_total", method="web-download") == 1
    assert value(f, "imgworker_tasks_succeeded_total", method="web-download") == 1
    assert value(f, "imgworker_tasks_in_progress") == 0
    assert value(f, "imgworker_bytes_downloaded_total", method="web-download") == 1000
    assert value(f, "imgworker_bytes_written_total", store="central") == 600
    assert value(f, "imgworker_bytes_skipped_total", store="central") == 400
    assert value(f, "imgworker_store_writes_total", store="central", result="success") == 1
    assert value(f, "imgworker_store_writes_total", store="dcn0", result="failure") == 1
    for store in ("central", "dcn0"):
        count = value(
            f, "imgworker_step_duration_seconds_count", step=f"store:{store}", result="success"
        )
        assert count == 1
    assert value(f, "imgworker_step_duration_seconds_sum", step="lock", result="success") == 1.5
    assert (
        value(f, "imgworker_task_duration_seconds_count", method="web-download", result="success")
        == 1
    )
    assert value(f, "imgworker_queue_wait_seconds_count", method="web-download") == 1


def test_failure_retry_and_dead_letter_are_counted_by_reason() -> None:
    metrics = Metrics()
    metrics.task_finished("copy-image", "failure", "store", 3.0)
    metrics.task_finished("copy-image", "failure", "store", 4.0)
    metrics.task_finished("web-download", "retry", "source", 1.0)
    metrics.dead_lettered("bad_json")
    f = scrape(metrics)
    assert value(f, "imgworker_tasks_failed_total", method="copy-image", reason="store") == 2
    assert value(f, "imgworker_tasks_retried_total", method="web-download", reason="source") == 1
    assert value(f, "imgworker_tasks_dead_lettered_total", reason="bad_json") == 1
    assert value(f, "imgworker_tasks_succeeded_total", method="copy-image") is None
    assert (
        value(f, "imgworker_task_duration_seconds_sum", method="copy-image", result="failure")
        == 7.0
    )
    assert (
        value(f, "imgworker_task_duration_seconds_count", method="web-download", result="retry")
        == 1
    )


def test_an_unknown_task_status_is_refused() -> None:
    with pytest.raises(ValueError, match="success, failure, retry"):
        Metrics().task_finished("web-download", "done", "", 1.0)


def test_safety_takeover_and_state_gauges() -> None:
    metrics = Metrics()
    metrics.safety_refusal("backing_file")
    metrics.lock_taken_over()
    metrics.consumer_attached(True)
    metrics.draining(True)
    f = scrape(metrics)
    assert value(f, "imgworker_safety_refusals_total", check="backing_file") == 1
    assert value(f, "imgworker_lock_takeovers_total") == 1
    assert value(f, "imgworker_consumer_attached") == 1
    assert value(f, "imgworker_draining") == 1
    metrics.consumer_attached(False)
    assert value(scrape(metrics), "imgworker_consumer_attached") == 0


def test_durations_fall_into_buckets_from_seconds_to_hours() -> None:
    metrics = Metrics()
    metrics.task_finished("web-download", "success", "", 2 * 3600.0)
    metrics.queue_wait("web-download", 0.002)
    metrics.queue_wait("web-download", -5.0)  # publisher's clock ahead of ours
    f = scrape(metrics)
    task = {
        s.labels["le"]: s.value
        for s in f["imgworker_task_duration_seconds"]
        if s.name.endswith("_bucket")
    }
    assert task["3600.0"] == 0 and task["7200.0"] == 1
    wait = {
        s.labels["le"]: s.value
        for s in f["imgworker_queue_wait_seconds"]
        if s.name.endswith("_bucket")
    }
    assert wait["0.005"] == 2
    assert value(f, "imgworker_queue_wait_seconds_sum", method="web-download") == 0.002


def test_staging_free_bytes_is_sampled_at_scrape(tmp_path: Path) -> None:
    metrics = Metrics(staging_dir=tmp_path)
    free = value(scrape(metrics), "imgworker_staging_free_bytes")
    assert free is not None and free > 0
    tmp_path.rmdir()
    missing = value(scrape(metrics), "imgworker_staging_free_bytes")
    assert missing is not None and math.isnan(missing)


def test_no_label_carries_an_id_or_url() -> None:
    metrics = Metrics(staging_dir=Path("/"))
    drive_one_import(metrics)
    metrics.task_finished("web-download", "failure", "image_size", 1.0)
    metrics.dead_lettered("missing_image")
    for samples in scrape(metrics).values():
        for sample in samples:
            for label in sample.labels.values():
                assert not ID_LIKE.search(label), (sample.name, label)
                assert UUID not in label


def test_registries_are_independent() -> None:
    first, second = Metrics(), Metrics(registry=CollectorRegistry())
    first.task_received("web-download")
    assert value(scrape(first), "imgworker_tasks_received_total", method="web-download") == 1
    assert value(scrape(second), "imgworker_tasks_received_total", method="web-download") is None
    assert "process_cpu_seconds" in scrape(first)
    assert "process_cpu_seconds" not in scrape(second)


def test_hooks_are_thread_safe() -> None:
    metrics = Metrics()

    def write() -> None:
        for _ in range(1000):
            metrics.bytes_written("central", 1)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert value(scrape(metrics), "imgworker_bytes_written_total", store="central") == 4000


def test_the_relay_s_hooks_move_the_notification_metrics() -> None:
    metrics = Metrics()
    metrics.notification_sent("image.upload")
    metrics.notification_sent("image.upload")
    metrics.notifications_waiting(7)
    metrics.notification_failed()
    f = scrape(metrics)
    assert value(f, "imgworker_notifications_sent_total", event_type="image.upload") == 2
    assert value(f, "imgworker_notifications_undelivered") == 7
    assert value(f, "imgworker_notifications_publish_failures_total") == 1


def test_the_api_metrics_are_the_documented_ones() -> None:
    registry = CollectorRegistry()
    metrics = CacheMetrics(registry)
    metrics.hits.inc()
    metrics.store_read_bytes.inc(5)
    metrics.fills.inc()
    metrics.skipped(SkipReason.NO_ROOM)
    metrics.evicted(EvictReason.LRU)
    ApiMetrics(registry).task_without_worker()
    registered: dict[str, tuple[str, set[str]]] = {}
    for family in registry.collect():
        name = family.name + ("_total" if family.type == "counter" else "")
        labels = {key for sample in family.samples for key in sample.labels}
        registered[name] = (family.type, labels)
    assert registered == documented_metrics(api=True)
    documented = documented_values(api=True)
    assert documented[("imgworker_cache_misses_total", "path")] == list(MissPath)
    assert documented[("imgworker_cache_served_bytes_total", "source")] == list(ServedFrom)
    assert documented[("imgworker_cache_fill_failures_total", "reason")] == list(FillReason)
    assert documented[("imgworker_cache_fill_skipped_total", "reason")] == list(SkipReason)
    assert documented[("imgworker_cache_evictions_total", "reason")] == list(EvictReason)
    samples = {s.name: s.value for f in registry.collect() for s in f.samples}
    assert samples["imgworker_api_tasks_without_worker_total"] == 1
