"""Settings for tests: everything under a temporary directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from worker.config.settings import Settings


def make_settings(
    root: Path,
    *,
    stores: tuple[str, ...] = ("central", "dcn0", "dcn1"),
    database_url: str | None = None,
    store_section: dict[str, Any] | None = None,
    **sections: dict[str, Any],
) -> Settings:
    """Settings with file stores ``root/stores/<name>``, staging ``root/staging``, SQLite.

    ``store_section`` replaces the whole ``[stores]`` section (rbd stores, ...).
    """
    data: dict[str, Any] = {
        "database": {"url": database_url or f"sqlite+aiosqlite:///{root / 'imgworker.db'}"},
        "staging": {"dir": str(root / "staging")},
        "stores": {
            "default": stores[0],
            **{name: {"type": "file", "path": str(root / "stores" / name)} for name in stores},
        },
        "worker": {"heartbeat_seconds": 1.0, "lease_seconds": 30.0},
        "safety": {
            "allow_private_addresses": True,
            "allowed_ports": [],
            "staging_min_free_bytes": 0,
        },
    }
    if store_section is not None:
        data["stores"] = store_section
    for section, values in sections.items():
        data.setdefault(section, {}).update(values)
    return Settings.model_validate(data)
