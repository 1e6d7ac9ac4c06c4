"""The everyday commands answer at once because they import only what they use.

Timing is the benchmark's business (benchmarks/bench_cli.py); this checks the mechanism:
after ``--version``, ``--help``, ``show``, ``list`` and ``task-show`` on a current SQLite
database, none of the heavy modules was imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.records import RecordWrites
from worker.config.settings import DatabaseSettings
from worker.db.catalog import NewImage
from worker.tasks.services import Records

#: Modules no everyday command needs, each costing a large part of the 0.3 s budget.
HEAVY = (
    "pydantic",
    "sqlalchemy",
    "alembic",
    "aiohttp",
    "aio_pika",
    "aiosqlite",
    "flows.steps",
    "worker.tasks.services",
    "rich",
)

#: Runs the command in this process, then writes the names of the loaded modules.
PROBE = """
import json, sys
from worker.commands import main
try:
    main(sys.argv[2:], prog_name="imgworker")
except SystemExit as exit:
    code = exit.code
else:
    code = 0
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted(sys.modules)}, out)
"""


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[tuple[str, str, str]]:
    """A current SQLite database with one image and one task: (url, image id, task id)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'records.db'}"
    records = await Records.open(DatabaseSettings(url=url), lease_seconds=30.0)
    try:
        image = await records.catalog.create(
            NewImage(owner=None, name="a", disk_format="raw", container_format="bare")
        )
        await RecordWrites(records.engine).create_task(
            task_id="t-1", image_id=image.id, type="api_image_import", input={}
        )
    finally:
        await records.close()
    yield url, image.id, "t-1"


def loaded_by(args: list[str], tmp_path: Path, database_url: str) -> tuple[object, set[str]]:
    """The exit code of ``imgworker ARGS`` and the modules it imported."""
    report = tmp_path / "modules.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGWORKER_")}
    env["IMGWORKER_DATABASE__URL"] = database_url
    subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *args],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    result = json.loads(report.read_text())
    return result["code"], set(result["modules"])


def heavy_among(modules: set[str]) -> list[str]:
    """The heavy modules (or their submodules) among ``modules``."""
    return sorted(m for m in modules if any(m == h or m.startswith(f"{h}.") for h in HEAVY))


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["show", "{image}"],
        ["show", "{image}", "--json"],
        ["show", "00000000-0000-0000-0000-000000000000"],
        ["list", "--include-stores"],
        ["task-show", "{task}"],
        ["task-show", "{task}", "--json"],
    ],
)
def test_everyday_commands_import_nothing_heavy(
    args: list[str], database: tuple[str, str, str], tmp_path: Path
) -> None:
    url, image, task = database
    argv = [arg.format(image=image, task=task) for arg in args]
    code, modules = loaded_by(argv, tmp_path, url)
    assert heavy_among(modules) == []
    assert "worker.db.sqlite_reader" in modules or argv[0].startswith("--")
    assert code == (1 if argv[-1].startswith("0000") else 0)


def test_a_database_to_create_still_gets_its_schema(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'new.db'}"
    code, modules = loaded_by(["list"], tmp_path, url)
    assert code == 0
    assert "alembic" in modules and (tmp_path / "new.db").is_file()
    code, modules = loaded_by(["list"], tmp_path, url)
    assert code == 0 and heavy_among(modules) == []
