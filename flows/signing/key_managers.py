"""Choosing the key manager ``[signature] key_manager`` names."""

from __future__ import annotations

from flows.errors import KeyManagerRefused
from flows.signing.barbican import BarbicanKeyManager
from flows.signing.config import SignatureSettings
from flows.signing.keys import DirectoryKeyManager, KeyManager


def build_key_manager(
    settings: SignatureSettings, requester_token: str | None = None
) -> KeyManager:
    """A :class:`DirectoryKeyManager` or a :class:`BarbicanKeyManager`, per the settings;
    Barbican is asked as the requester when their token is given."""
    if settings.key_manager == "directory":
        return DirectoryKeyManager(settings.certificate_dir)
    if settings.key_manager == "barbican":
        return BarbicanKeyManager.from_settings(settings, requester_token)
    raise KeyManagerRefused(
        f"[signature] key_manager {settings.key_manager!r} is unknown; "
        "use 'directory' or 'barbican'"
    )
