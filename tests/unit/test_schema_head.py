"""The schema's HEAD constant (checked without Alembic at start) is Alembic's own head."""

from __future__ import annotations

from alembic.script import ScriptDirectory

from worker.db.schema import HEAD, alembic_config


def test_head_is_the_newest_migration() -> None:
    scripts = ScriptDirectory.from_config(alembic_config("sqlite+aiosqlite:///:memory:"))
    assert scripts.get_current_head() == HEAD
