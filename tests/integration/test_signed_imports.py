"""Signed images through the whole import: a qcow2 signed as qcow2 is stored as raw, and
every bad signature is refused before anything is converted or written."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from flows.request import ImportRequest
from tests.support.images import MiB, convert, make_sparse_raw, sha512_of
from tests.support.settings import make_settings
from tests.support.signing import (
    Identity,
    expired,
    install_certificate,
    make_ca,
    make_certificate,
    signature_properties,
)
from worker.daemon.metrics import Metrics
from worker.db.catalog import NewImage
from worker.tasks.runner import TaskOutcome, run_task
from worker.tasks.services import Services
from worker.tasks.staging import stage_upload
from worker.tasks.submission import SubmissionRules, submit_import

STORES = ("central", "dcn0")


@pytest.fixture
async def opened(tmp_path: Path) -> AsyncIterator[tuple[Services, Metrics]]:
    settings = make_settings(
        tmp_path, stores=STORES, signature={"certificate_dir": str(tmp_path / "certs")}
    )
    metrics = Metrics()
    services = await Services.open(settings, metrics)
    try:
        yield services, metrics
    finally:
        await services.close()


@pytest.fixture
def qcow2(tmp_path: Path) -> Path:
    raw = tmp_path / "disk.raw"
    make_sparse_raw(raw, 16 * MiB, [(0, MiB), (9 * MiB, MiB)])
    return convert(raw, tmp_path / "disk.qcow2", "raw", "qcow2")


async def _import(
    services: Services, source: Path, properties: dict[str, str]
) -> tuple[TaskOutcome, str]:
    image = await services.records.catalog.create(
        NewImage(
            owner=None,
            name="signed",
            disk_format="qcow2",
            container_format="bare",
            properties=properties,
        )
    )
    await stage_upload(services.images, services.settings.staging.dir, image.id, source)
    request = ImportRequest(method="glance-direct", stores=STORES)
    rules = SubmissionRules.from_settings(services.settings)
    task = await submit_import(services.records, rules, image_id=image.id, request=request)
    return await run_task(services, task.id), image.id


def _identity(kind: str) -> Identity:
    ca = make_ca()
    if kind == "expired":
        return expired("expired signer", "rsa", ca)
    return make_certificate(f"{kind} signer", kind, issuer=ca)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["rsa", "ec-p384"])
async def test_signed_qcow2_is_verified_then_stored_as_raw(
    opened: tuple[Services, Metrics], qcow2: Path, tmp_path: Path, kind: str
) -> None:
    services, _metrics = opened
    certificate = str(uuid.uuid4())
    signer = _identity(kind)
    install_certificate(tmp_path / "certs", certificate, signer)
    outcome, image_id = await _import(
        services, qcow2, signature_properties(qcow2, signer, certificate, "SHA-512")
    )
    assert outcome.status == "success", outcome.message
    image = await services.images.get(image_id)
    expected = convert(qcow2, tmp_path / "expected.raw", "qcow2", "raw")
    assert image.stores == list(STORES) and image.os_hash_value == sha512_of(expected)


@pytest.mark.parametrize("case", ["tampered", "expired", "unknown-certificate", "wrong-key"])
async def test_bad_signatures_are_refused_before_anything_is_written(
    opened: tuple[Services, Metrics], qcow2: Path, tmp_path: Path, case: str
) -> None:
    services, metrics = opened
    certificate = str(uuid.uuid4())
    signer = _identity("expired" if case == "expired" else "rsa")
    installed = make_certificate("someone else", "rsa", issuer=make_ca(), slot=7)
    if case != "unknown-certificate":
        install_certificate(
            tmp_path / "certs", certificate, installed if case == "wrong-key" else signer
        )
    properties = signature_properties(qcow2, signer, certificate)
    if case == "tampered":
        data = bytearray(qcow2.read_bytes())
        data[-100] ^= 0xFF
        qcow2.write_bytes(bytes(data))
    outcome, image_id = await _import(services, qcow2, properties)
    assert outcome.status == "failure" and outcome.reason == "signature"
    task_messages = [t.message for t in await services.tasks.list_for_image(image_id)]
    assert task_messages[0].startswith("verify_signature:")
    assert b'imgworker_safety_refusals_total{check="signature"} 1.0' in generate_latest(
        metrics.registry
    )
    image = await services.images.get(image_id)
    assert image.status == "failed" and image.locations == ()
    for name in STORES:
        directory = tmp_path / "stores" / name
        assert not directory.exists() or not any(directory.iterdir())
    assert not any(services.settings.staging.dir.iterdir())
