"""Every hostile input refused end to end: its own message and metric, nothing stored or left.

qemu-img is the real one, behind a spy on PATH that logs every call, so the test can show
that no refused image ever reached it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from flows.errors import SafetyRefusal
from tests.support.corpus import HOSTILE, Case
from tests.support.http import serve_directory
from tests.support.services import require_program
from tests.support.settings import make_settings
from worker.config.settings import Settings
from worker.daemon.metrics import Metrics
from worker.tasks.embedded import import_image
from worker.tasks.services import Services

STORES = ("central", "dcn0")


@pytest.fixture
def spy_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    real = require_program("qemu-img", "qemu-utils")
    spy_dir = tmp_path / "spy"
    spy_dir.mkdir()
    log = tmp_path / "qemu-img.calls"
    log.touch()
    spy = spy_dir / "qemu-img"
    spy.write_text(f'#!/bin/sh\necho "$@" >> {log}\nexec {real} "$@"\n')
    spy.chmod(spy.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{spy_dir}{os.pathsep}{os.environ['PATH']}")
    return log


def _settings(tmp_path: Path, **safety: object) -> Settings:
    return make_settings(tmp_path, stores=STORES, safety=dict(safety))


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[tuple[Services, Metrics]]:
    metrics = Metrics()
    services = await Services.open(_settings(tmp_path), metrics)
    try:
        yield services, metrics
    finally:
        await services.close()


def _refusals(metrics: Metrics) -> dict[str, float]:
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(generate_latest(metrics.registry).decode()):
        for sample in family.samples:
            if sample.name == "imgworker_safety_refusals_total":
                counts[sample.labels["check"]] = sample.value
    return counts


def _nothing_left(settings: Settings) -> None:
    for name in STORES:
        directory = Path(settings.stores.backends[name].path)  # type: ignore[union-attr]
        assert not directory.exists() or not any(directory.iterdir()), name
    staging = settings.staging.dir
    assert not staging.exists() or not any(staging.iterdir())


@pytest.mark.parametrize("case", HOSTILE, ids=[case.name for case in HOSTILE])
async def test_hostile_image_is_refused_before_qemu_img(
    case: Case, tmp_path: Path, spy_log: Path, opened: tuple[Services, Metrics]
) -> None:
    services, metrics = opened
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    source = case.make(corpus)
    result = await import_image(
        services, file=source, disk_format=case.declared, stores=list(STORES)
    )
    assert result.outcome.status == "failure"
    assert result.outcome.reason == case.check
    assert result.image.status == "failed"
    assert case.words in result.task.message and result.task.message.startswith("inspect:")
    assert _refusals(metrics) == {case.check: 1.0}
    assert result.image.id not in spy_log.read_text()
    _nothing_left(services.settings)


@pytest.mark.parametrize(
    ("uri", "check"),
    [
        ("http://127.0.0.1/disk.raw", "uri_address"),
        ("http://10.0.0.1/disk.raw", "uri_address"),
        ("http://0x7f000001/disk.raw", "uri_address"),
        ("http://2130706433/disk.raw", "uri_address"),
        ("http://[::1]/disk.raw", "uri_address"),
        ("http://169.254.169.254/latest/meta-data", "uri_address"),
        ("http://8.8.8.8:22/disk.raw", "uri_port"),
        ("file:///etc/passwd", "uri_scheme"),
    ],
)
async def test_hostile_uris_are_refused_by_the_default_policy(
    tmp_path: Path, uri: str, check: str
) -> None:
    metrics = Metrics()
    settings = make_settings(
        tmp_path,
        stores=STORES,
        safety={"allow_private_addresses": False, "allowed_ports": [80, 443]},
    )
    services = await Services.open(settings, metrics)
    try:
        with pytest.raises(SafetyRefusal) as refused:
            await import_image(services, uri=uri, disk_format="raw", stores=list(STORES))
        # Refused before anything was recorded: no image, no task is left for it.
        assert await services.images.list() == []
    finally:
        await services.close()
    assert refused.value.check == check and "[safety] " in str(refused.value)
    assert _refusals(metrics) == {check: 1.0}
    _nothing_left(settings)


async def test_redirect_to_a_private_address_is_refused(tmp_path: Path) -> None:
    www = tmp_path / "www"
    www.mkdir()
    metrics = Metrics()
    settings = make_settings(
        tmp_path,
        stores=STORES,
        safety={
            "allow_private_addresses": False,
            "allowed_ports": [],
            "trusted_hosts": ["127.0.0.1"],
        },
    )
    services = await Services.open(settings, metrics)
    try:
        async with serve_directory(www) as base:
            result = await import_image(
                services,
                uri=f"{base}/redirect-to?url=http://10.0.0.1/disk.raw",
                disk_format="raw",
                stores=list(STORES),
            )
    finally:
        await services.close()
    assert result.outcome.status == "failure", result.outcome.message
    assert result.outcome.reason == "redirect"
    assert "10.0.0.1" in result.task.message
    _nothing_left(settings)
