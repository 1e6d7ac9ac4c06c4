"""Step ``verify_signature`` over a real qcow2, signed over its qcow2 bits."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.config import FlowSettings
from flows.context import ImportContext
from flows.engine import Flow, FlowFailed, Step
from flows.errors import SafetyRefusal
from flows.records import ImageRecord
from flows.request import ImportRequest
from flows.signing.config import SignatureSettings
from flows.steps.verify import VerifySignatureStep
from tests.support.fakes import MemoryImages, MemoryTasks
from tests.support.images import MiB, convert, make_sample_qcow2
from tests.support.services import require_program
from tests.support.signing import (
    Identity,
    install_certificate,
    make_ca,
    make_certificate,
    signature_properties,
)

CERT_UUID = "6a0c7e0e-1d7b-4d38-9a7c-4b1f7d3c2e11"


@pytest.fixture(scope="module")
def signer() -> Identity:
    return make_certificate("qcow2 signer", "rsa", issuer=make_ca())


@pytest.fixture
def qcow2(tmp_path: Path) -> Path:
    require_program("qemu-img", "qemu-utils")
    staging = tmp_path / "staging"
    staging.mkdir()
    return make_sample_qcow2(staging / "img", 32 * MiB, 3 * MiB)


def _context(
    tmp_path: Path, staged: Path, properties: dict[str, str], *, require: bool = False
) -> ImportContext:
    signature = SignatureSettings(
        certificate_dir=tmp_path / "certificates", require_signature=require
    )
    settings = FlowSettings(staging_dir=staged.parent, chunk_size=MiB, signature=signature)
    images = MemoryImages()
    image = ImageRecord(
        id="img",
        name="signed",
        status="importing",
        disk_format="qcow2",
        container_format="bare",
        properties=properties,
    )
    images.put(image)
    ctx = ImportContext(
        task_id="t",
        image_id="img",
        worker_id="w",
        request=ImportRequest(method="web-download", uri="http://example.org/img.qcow2"),
        images=images,
        tasks=MemoryTasks(),
        stores={},
        default_store="default",
        settings=settings,
    )
    ctx.image = image
    ctx.staged_path = staged
    return ctx


class RecordingStoreStep:
    """Stands for a store write: records whether the flow got that far."""

    name = "store:central"

    def __init__(self) -> None:
        self.written = False

    async def execute(self, ctx: ImportContext) -> None:
        self.written = True

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        return None


def _flow(store: RecordingStoreStep) -> Flow[ImportContext]:
    steps: list[Step[ImportContext]] = [VerifySignatureStep(), store]
    return Flow("import", steps)


class NoTimer:
    def step_finished(self, step: str, seconds: float, result: str) -> None:
        return None


async def test_qcow2_signed_as_qcow2_verifies_from_the_staged_bits(
    tmp_path: Path, qcow2: Path, signer: Identity
) -> None:
    install_certificate(tmp_path / "certificates", CERT_UUID, signer)
    properties = signature_properties(qcow2, signer, CERT_UUID, "SHA-512")
    ctx = _context(tmp_path, qcow2, properties)
    store = RecordingStoreStep()
    await _flow(store).run(ctx, NoTimer())
    assert store.written

    # The same properties do not fit the converted raw bits: only the staged original verifies.
    raw = convert(qcow2, qcow2.with_suffix(".raw"), "qcow2", "raw")
    ctx.staged_path = raw
    with pytest.raises(SafetyRefusal, match="does not match the image data"):
        await VerifySignatureStep().execute(ctx)


async def test_tampered_qcow2_is_refused_before_any_store_write(
    tmp_path: Path, qcow2: Path, signer: Identity
) -> None:
    install_certificate(tmp_path / "certificates", CERT_UUID, signer)
    properties = signature_properties(qcow2, signer, CERT_UUID)
    with open(qcow2, "r+b") as handle:
        handle.seek(-1, 2)
        last = handle.read(1)
        handle.seek(-1, 2)
        handle.write(bytes([last[0] ^ 0xFF]))
    ctx = _context(tmp_path, qcow2, properties)
    store = RecordingStoreStep()
    with pytest.raises(FlowFailed) as caught:
        await _flow(store).run(ctx, NoTimer())
    assert caught.value.step == "verify_signature"
    assert isinstance(caught.value.error, SafetyRefusal)
    assert caught.value.error.check == "signature"
    assert not store.written


class UnusableKeyManager:
    """A key manager that must not be asked (the image is unsigned)."""

    async def get_certificate(self, certificate_id: str) -> bytes:
        raise AssertionError("an unsigned image needs no certificate")


async def test_unsigned_image_is_a_no_op(tmp_path: Path, qcow2: Path) -> None:
    before = qcow2.read_bytes()
    ctx = _context(tmp_path, qcow2, {"hw_disk_bus": "virtio"})
    await VerifySignatureStep(UnusableKeyManager()).execute(ctx)
    await VerifySignatureStep().revert(ctx, RuntimeError("later failure"))
    assert qcow2.read_bytes() == before
    assert ctx.staged_path == qcow2


async def test_unsigned_image_is_refused_when_a_signature_is_required(
    tmp_path: Path, qcow2: Path
) -> None:
    ctx = _context(tmp_path, qcow2, {}, require=True)
    with pytest.raises(SafetyRefusal, match="image is not signed") as caught:
        await VerifySignatureStep(UnusableKeyManager()).execute(ctx)
    assert caught.value.check == "signature"
