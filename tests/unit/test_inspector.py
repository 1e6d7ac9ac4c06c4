"""The format inspector on the generated corpus: every hostile case refused by its own check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flows.errors import SafetyRefusal
from flows.inspector import inspect_file, qemu_format
from flows.policy import SafetyPolicy
from tests.support.corpus import HOSTILE, Case, legitimate
from tests.support.images import qemu_img
from tests.support.services import require_program

POLICY = SafetyPolicy()


@pytest.fixture(autouse=True)
def _qemu() -> None:
    require_program("qemu-img", "qemu-utils")


@pytest.mark.parametrize("case", HOSTILE, ids=[case.name for case in HOSTILE])
def test_hostile_images_are_refused(case: Case, tmp_path: Path) -> None:
    path = case.make(tmp_path)
    with pytest.raises(SafetyRefusal) as refused:
        inspect_file(path, case.declared, POLICY)
    assert refused.value.check == case.check, refused.value.message
    assert case.words in refused.value.message


@pytest.mark.parametrize(
    "key", ["qcow2", "vmdk", "vmdk-stream", "vhd", "vhdx", "vdi", "raw", "iso"]
)
def test_legitimate_images_pass_with_qemu_img_s_virtual_size(key: str, tmp_path: Path) -> None:
    path = legitimate(tmp_path)[key]
    declared = key.split("-")[0]
    found = inspect_file(path, declared, POLICY)
    info = json.loads(qemu_img("info", "-f", qemu_format(declared), "--output=json", str(path)))
    assert found.format == declared
    assert found.virtual_size == info["virtual-size"]


def test_vmdk_subformats_follow_the_policy(tmp_path: Path) -> None:
    path = legitimate(tmp_path)["vmdk-stream"]
    strict = SafetyPolicy(vmdk_allowed_types=("monolithicSparse",))
    with pytest.raises(SafetyRefusal, match="'streamOptimized' is not allowed"):
        inspect_file(path, "vmdk", strict)


def test_partitioned_raw_disk_is_raw(tmp_path: Path) -> None:
    path = tmp_path / "disk.raw"
    size = 1024 * 1024
    data = bytearray(size)
    data[510:512] = b"\x55\xaa"
    data[512:520] = b"EFI PART"
    path.write_bytes(bytes(data))
    assert inspect_file(path, "raw", POLICY).virtual_size == size


def test_virtual_size_cap_is_configurable(tmp_path: Path) -> None:
    path = legitimate(tmp_path)["qcow2"]
    with pytest.raises(SafetyRefusal, match="above the cap of 1048576") as refused:
        inspect_file(path, "qcow2", SafetyPolicy(virtual_size_cap=1024 * 1024))
    assert refused.value.check == "virtual_size"
