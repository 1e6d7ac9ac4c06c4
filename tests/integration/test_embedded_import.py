"""The embedded import end to end: real qemu-img, real file stores, SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flows.engine import Flow
from flows.records import FAILED_IMPORT, IMPORT_LOCK, IMPORTING_TO_STORES
from tests.support.images import (
    MiB,
    allocated_bytes,
    convert,
    make_sparse_raw,
    md5_of,
    sha512_of,
)
from tests.support.settings import make_settings
from tests.support.stores import immutable
from worker.config.settings import Settings
from worker.tasks import runner as runner_module
from worker.tasks.embedded import copy_image, import_image
from worker.tasks.services import Services

STORES = ["central", "dcn0", "dcn1"]
VIRTUAL = 96 * MiB
EXTENTS = [(0, MiB), (10 * MiB + 4096, 3 * MiB), (50 * MiB, 2 * MiB), (VIRTUAL - MiB, MiB)]
DATA = sum(length for _, length in EXTENTS)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path, database_url=database_url, **{"import": {"chunk_size": MiB}})


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    opened = await Services.open(settings)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def raw_image(tmp_path: Path) -> Path:
    path = tmp_path / "source.raw"
    make_sparse_raw(path, VIRTUAL, EXTENTS)
    return path


@pytest.fixture
def qcow2_image(tmp_path: Path, raw_image: Path) -> Path:
    return convert(raw_image, tmp_path / "source.qcow2", "raw", "qcow2")


def store_file(settings: Settings, store: str, image_id: str) -> Path:
    return Path(settings.stores.backends[store].path) / image_id  # type: ignore[union-attr]


def staging_is_empty(settings: Settings) -> bool:
    return not settings.staging.dir.exists() or not any(settings.staging.dir.iterdir())


@pytest.mark.parametrize("compressed", [False, True], ids=["qcow2", "compressed-qcow2"])
async def test_qcow2_into_three_stores_is_exact_and_sparse(
    services: Services, settings: Settings, raw_image: Path, tmp_path: Path, compressed: bool
) -> None:
    source = convert(
        raw_image, tmp_path / "in.qcow2", "raw", "qcow2", *(["-c"] if compressed else [])
    )
    expected = convert(source, tmp_path / "expected.raw", "qcow2", "raw")

    result = await import_image(
        services, file=source, disk_format="qcow2", stores=STORES, allow_failure=False
    )

    image = result.image
    assert result.outcome.status == "success", result.outcome.message
    assert image.status == "active"
    assert image.stores == STORES
    assert image.store_list(IMPORTING_TO_STORES) == [] and image.store_list(FAILED_IMPORT) == []
    assert image.os_hash_algo == "sha512" and image.os_hash_value == sha512_of(expected)
    assert image.checksum == md5_of(expected)
    assert image.size == VIRTUAL and image.virtual_size == VIRTUAL
    assert (image.disk_format, image.container_format) == ("raw", "bare")
    assert not image.properties.get(IMPORT_LOCK)
    assert result.task.status == "success"
    for store in STORES:
        stored = store_file(settings, store, image.id)
        assert stored.read_bytes() == expected.read_bytes()
        assert allocated_bytes(stored) <= DATA + settings.import_.chunk_size
    assert staging_is_empty(settings)


async def test_raw_with_holes_is_not_converted_and_stays_sparse(
    services: Services, settings: Settings, raw_image: Path
) -> None:
    result = await import_image(services, file=raw_image, disk_format="raw", stores=["central"])
    assert result.image.status == "active", result.outcome.message
    stored = store_file(settings, "central", result.image.id)
    assert stored.read_bytes() == raw_image.read_bytes()
    assert allocated_bytes(stored) <= DATA + settings.import_.chunk_size
    assert result.image.os_hash_value == sha512_of(raw_image)


async def test_second_store_unwritable_with_allow_failure(
    services: Services, settings: Settings, qcow2_image: Path, tmp_path: Path
) -> None:
    with immutable(Path(settings.stores.backends["dcn0"].path)):  # type: ignore[union-attr]
        result = await import_image(
            services, file=qcow2_image, disk_format="qcow2", stores=STORES, allow_failure=True
        )
    image = result.image
    assert result.outcome.status == "success"
    assert image.status == "active"
    assert image.stores == ["central", "dcn1"]
    assert image.store_list(FAILED_IMPORT) == ["dcn0"]
    assert image.store_list(IMPORTING_TO_STORES) == []
    assert "dcn0" in result.outcome.message
    assert staging_is_empty(settings)


async def test_second_store_unwritable_when_every_store_must_succeed(
    services: Services, settings: Settings, qcow2_image: Path
) -> None:
    dcn0 = Path(settings.stores.backends["dcn0"].path)  # type: ignore[union-attr]
    with immutable(dcn0):
        result = await import_image(
            services, file=qcow2_image, disk_format="qcow2", stores=STORES, allow_failure=False
        )
    image = result.image
    assert result.outcome.status == "failure"
    assert image.status == "failed"
    assert image.stores == [] and image.locations == ()
    assert image.store_list(FAILED_IMPORT) == ["dcn0"]
    assert image.store_list(IMPORTING_TO_STORES) == []
    assert (image.disk_format, image.container_format) == ("qcow2", "bare")
    assert "store:dcn0" in result.task.message and "Operation not permitted" in result.task.message
    assert result.task.status == "failure"
    for store in STORES:
        directory = Path(settings.stores.backends[store].path)  # type: ignore[union-attr]
        assert not directory.exists() or list(directory.iterdir()) == []
    assert not image.properties.get(IMPORT_LOCK)
    assert staging_is_empty(settings)


@pytest.mark.parametrize("allow_failure", [True, False], ids=["allow-failure", "must-succeed"])
async def test_guide_sequence_after_every_step(
    services: Services,
    settings: Settings,
    qcow2_image: Path,
    monkeypatch: pytest.MonkeyPatch,
    allow_failure: bool,
) -> None:
    """The table of the guide's 2.2.5: (status, importing, failed) after each step."""
    rows: list[tuple[str, str, str, str]] = []
    build = runner_module.build_import_flow

    class Observed:
        def __init__(self, inner: object) -> None:
            self.inner = inner
            self.name = inner.name  # type: ignore[attr-defined]

        async def execute(self, ctx: object) -> None:
            try:
                await self.inner.execute(ctx)  # type: ignore[attr-defined]
            finally:
                image = await services.images.get(ctx.image_id)  # type: ignore[attr-defined]
                rows.append(
                    (
                        self.name,
                        image.status,
                        image.properties.get(IMPORTING_TO_STORES, ""),
                        image.properties.get(FAILED_IMPORT, ""),
                    )
                )

        async def revert(self, ctx: object, error: BaseException) -> None:
            await self.inner.revert(ctx, error)  # type: ignore[attr-defined]

    def observed_flow(ctx: object, targets: list[str]) -> Flow[object]:
        flow = build(ctx, targets)  # type: ignore[arg-type]
        return Flow(flow.name, [Observed(step) for step in flow.steps])  # type: ignore[misc]

    monkeypatch.setattr(runner_module, "build_import_flow", observed_flow)
    with immutable(Path(settings.stores.backends["dcn0"].path)):  # type: ignore[union-attr]
        result = await import_image(
            services,
            file=qcow2_image,
            disk_format="qcow2",
            stores=STORES,
            allow_failure=allow_failure,
        )
    stores_rows = [row for row in rows if row[0].startswith(("lock", "store:"))]
    if allow_failure:
        assert stores_rows == [
            ("lock", "importing", "central,dcn0,dcn1", ""),
            ("store:central", "active", "dcn0,dcn1", ""),
            ("store:dcn0", "active", "dcn1", "dcn0"),
            ("store:dcn1", "active", "", "dcn0"),
        ]
        final = ("active", "", "dcn0")
    else:
        assert stores_rows == [
            ("lock", "importing", "central,dcn0,dcn1", ""),
            ("store:central", "importing", "dcn0,dcn1", ""),
            ("store:dcn0", "importing", "dcn1", "dcn0"),
        ]
        final = ("failed", "", "dcn0")
    image = result.image
    assert (
        image.status,
        image.properties.get(IMPORTING_TO_STORES, ""),
        image.properties.get(FAILED_IMPORT, ""),
    ) == final


async def test_copy_image_to_more_stores(
    services: Services, settings: Settings, qcow2_image: Path
) -> None:
    first = await import_image(services, file=qcow2_image, disk_format="qcow2", stores=["central"])
    assert first.image.status == "active"
    copied = await copy_image(services, first.image.id, stores=["dcn0", "dcn1"])
    assert copied.outcome.status == "success", copied.outcome.message
    assert copied.image.status == "active"
    assert copied.image.stores == STORES
    assert copied.image.os_hash_value == first.image.os_hash_value
    central = store_file(settings, "central", first.image.id).read_bytes()
    for store in ("dcn0", "dcn1"):
        assert store_file(settings, store, first.image.id).read_bytes() == central
    from flows.errors import ImageStateConflict

    with pytest.raises(ImageStateConflict, match="already present at store"):
        await copy_image(services, first.image.id, stores=["dcn0"])
    with pytest.raises(ImageStateConflict, match="every store"):
        await copy_image(services, first.image.id, all_stores=True)
    assert staging_is_empty(settings)


async def test_copy_image_failure_keeps_the_image_active(
    services: Services, settings: Settings, qcow2_image: Path
) -> None:
    first = await import_image(services, file=qcow2_image, disk_format="qcow2", stores=["central"])
    with immutable(Path(settings.stores.backends["dcn0"].path)):  # type: ignore[union-attr]
        copied = await copy_image(services, first.image.id, stores=["dcn0"], allow_failure=False)
    assert copied.outcome.status == "failure"
    assert copied.image.status == "active"
    assert copied.image.stores == ["central"]
    assert copied.image.store_list(FAILED_IMPORT) == ["dcn0"]


async def test_conversion_failure_is_reported_and_cleaned(
    tmp_path: Path, database_url: str, qcow2_image: Path
) -> None:
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        safety={
            "allow_private_addresses": True,
            "allowed_ports": [],
            "staging_min_free_bytes": 0,
            "qemu_convert_address_space": 4 * MiB,
        },
    )
    services = await Services.open(settings)
    try:
        result = await import_image(services, file=qcow2_image, disk_format="qcow2")
    finally:
        await services.close()
    assert result.outcome.status == "failure"
    assert result.image.status == "failed"
    assert "convert" in result.task.message and "qemu-img convert" in result.task.message
    assert staging_is_empty(settings)


def test_cli_import_show_and_list(tmp_path: Path, qcow2_image: Path) -> None:
    settings_env = {
        **os.environ,
        "IMGWORKER_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}",
        "IMGWORKER_STAGING__DIR": str(tmp_path / "staging"),
        "IMGWORKER_SAFETY__STAGING_MIN_FREE_BYTES": "0",
        "IMGWORKER_STORES__DEFAULT": "central",
        **{f"IMGWORKER_STORES__{s.upper()}__TYPE": "file" for s in STORES},
        **{f"IMGWORKER_STORES__{s.upper()}__PATH": str(tmp_path / s) for s in STORES},
    }
    imgworker = str(Path(sys.executable).parent / "imgworker")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [imgworker, *args],
            env=settings_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    done = cli(
        "import",
        "--file",
        str(qcow2_image),
        "--disk-format",
        "qcow2",
        "--stores",
        "central,dcn0,dcn1",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["status"] == "active" and shown["stores"] == "central,dcn0,dcn1"
    # What the stores hold, as Glance's image_conversion records it.
    assert (shown["disk_format"], shown["container_format"]) == ("raw", "bare")
    assert shown["size"] == VIRTUAL
    again = cli("show", shown["id"], "--json")
    assert set(json.loads(again.stdout)) == {
        "id",
        "name",
        "status",
        "stores",
        "os_glance_importing_to_stores",
        "os_glance_failed_import",
        "size",
        "virtual_size",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "disk_format",
        "container_format",
        "locations",
    }
    assert [loc["metadata"]["store"] for loc in json.loads(again.stdout)["locations"]] == STORES
    listed = cli("list", "--include-stores")
    assert shown["id"] in listed.stdout and "central,dcn0,dcn1" in listed.stdout
    missing = cli("show", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode != 0 and "does not exist" in missing.stderr
    assert "Traceback" not in missing.stderr
    with immutable(tmp_path / "dcn0"):
        failed = cli(
            "import",
            "--file",
            str(qcow2_image),
            "--disk-format",
            "qcow2",
            "--stores",
            "central,dcn0,dcn1",
            "--no-allow-failure",
            "--json",
        )
    assert failed.returncode == 1
    assert "store:dcn0" in failed.stderr and "Traceback" not in failed.stderr
    # The revert put back what the image was: nothing was stored.
    reverted = json.loads(cli("show", json.loads(failed.stdout)["id"], "--json").stdout)
    assert reverted["status"] == "failed" and reverted["stores"] == ""
    assert (reverted["disk_format"], reverted["container_format"]) == ("qcow2", "bare")
    # Deleting in this process: one store's copy, then the whole image (the guide's 2.4).
    image_id = shown["id"]
    one_copy = cli("stores-delete", image_id, "--store", "dcn0")
    assert one_copy.returncode == 0, one_copy.stderr
    assert not (tmp_path / "dcn0" / image_id).exists()
    assert json.loads(cli("show", image_id, "--json").stdout)["stores"] == "central,dcn1"
    gone = cli("image-delete", image_id)
    assert gone.returncode == 0, gone.stderr
    assert not any((tmp_path / s / image_id).exists() for s in STORES)
    assert cli("show", image_id).returncode != 0


@pytest.mark.parametrize("allow_failure", [True, False], ids=["allow-failure", "must-succeed"])
async def test_three_stores_at_once_one_unwritable(
    tmp_path: Path, database_url: str, qcow2_image: Path, allow_failure: bool
) -> None:
    """``max_parallel_stores = 3``: dcn0 cannot be written while central and dcn1 are."""
    settings = make_settings(
        tmp_path,
        database_url=database_url,
        **{"import": {"chunk_size": MiB, "max_parallel_stores": 3}},
    )
    services = await Services.open(settings)
    try:
        with immutable(Path(settings.stores.backends["dcn0"].path)):  # type: ignore[union-attr]
            result = await import_image(
                services,
                file=qcow2_image,
                disk_format="qcow2",
                stores=STORES,
                allow_failure=allow_failure,
            )
    finally:
        await services.close()
    image = result.image
    assert image.store_list(FAILED_IMPORT) == ["dcn0"]
    assert image.store_list(IMPORTING_TO_STORES) == []
    assert "dcn0" in result.outcome.message and "Operation not permitted" in result.outcome.message
    leftovers = {
        store: sorted(p.name for p in Path(settings.stores.backends[store].path).iterdir())  # type: ignore[union-attr]
        for store in STORES
        if Path(settings.stores.backends[store].path).exists()  # type: ignore[union-attr]
    }
    if allow_failure:
        assert result.outcome.status == "success"
        assert image.status == "active" and sorted(image.stores) == ["central", "dcn1"]
        assert (image.disk_format, image.container_format) == ("raw", "bare")
        expected = convert(qcow2_image, tmp_path / "expected.raw", "qcow2", "raw").read_bytes()
        for store in ("central", "dcn1"):
            assert store_file(settings, store, image.id).read_bytes() == expected
        assert {k: v for k, v in leftovers.items() if v} == {
            "central": [image.id],
            "dcn1": [image.id],
        }
    else:
        assert result.outcome.status == "failure" and result.task.status == "failure"
        assert image.status == "failed" and image.locations == ()
        assert (image.disk_format, image.container_format) == ("qcow2", "bare")
        assert "store:dcn0" in result.task.message
        assert not any(leftovers.values())
    assert staging_is_empty(settings)
