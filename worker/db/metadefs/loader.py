"""``imgworker db load-metadefs DIR``: Glance's shipped definitions into the catalogue, as
``glance-manage db_load_metadefs`` loads them.

Each ``*.json`` file of DIR is one namespace; one already in the catalogue is skipped (not
merged), its owner is the file's ``owner`` or ``admin``, and the resource types it brings are
the protected, shipped kind. A file that cannot be read or does not match the schema is
reported with why, and the others are loaded all the same. Each namespace is loaded in a
transaction of its own; no limit applies (it is the operator's act).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from worker.db.metadefs.catalog import add_namespace
from worker.db.metadefs.definitions import InvalidDefinition, namespace_of
from worker.db.metadefs.records import MetadefDuplicate

#: Glance's owner of shipped namespaces that name none.
DEFAULT_OWNER = "admin"


@dataclass
class LoadReport:
    """What a load did, file by file."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


async def load_definitions(sessions: async_sessionmaker[AsyncSession], source: Path) -> LoadReport:
    """Load every ``*.json`` definition of ``source`` (a directory, or one file)."""
    files = [source] if source.is_file() else sorted(source.glob("*.json"))
    if not files:
        raise FileNotFoundError(f"{source}: no *.json metadef files there")
    report = LoadReport()
    for path in files:
        try:
            namespace, contents = namespace_of(json.loads(path.read_text()), DEFAULT_OWNER)
        except (OSError, UnicodeDecodeError, ValueError) as error:
            kind = (
                "not a metadef definition" if isinstance(error, InvalidDefinition) else "unreadable"
            )
            report.refused.append(f"{path}: {kind}: {error}")
            continue
        try:
            async with sessions() as session, session.begin():
                await add_namespace(session, namespace, contents, protected_types=True)
        except MetadefDuplicate:
            report.skipped.append(namespace.namespace)
            continue
        report.loaded.append(namespace.namespace)
    return report
