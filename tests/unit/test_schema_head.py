"""``SCHEMA_HEAD`` names the newest migration, so a current database skips Alembic."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from worker.db.schema import SCHEMA_HEAD, alembic_config


def test_schema_head_is_the_newest_migration() -> None:
    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert heads == [SCHEMA_HEAD], (
        f"worker/db/schema.py says SCHEMA_HEAD = {SCHEMA_HEAD!r} but the migrations' head is "
        f"{heads}: set SCHEMA_HEAD to the new migration's revision"
    )
