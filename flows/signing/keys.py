"""Where signing certificates come from: a small key manager protocol and its directory form.

A key manager answers one question: the bytes (PEM or DER) of the certificate that
``img_signature_certificate_uuid`` names. :class:`DirectoryKeyManager` reads ``<uuid>.pem``
files; :mod:`flows.signing.barbican` asks Barbican, as Glance does through castellan.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Protocol

from flows.errors import KeyManagerRefused, SafetyRefusal
from flows.signing.properties import CERTIFICATE_UUID, CHECK

#: A certificate id is a file name or a URL path segment: no separators, no dots, no tricks.
_CERTIFICATE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


class KeyManager(Protocol):
    """Fetches signing certificates by id."""

    async def get_certificate(self, certificate_id: str) -> bytes:
        """The certificate's bytes (PEM or DER).

        Raises :class:`SafetyRefusal` when there is no such certificate,
        :class:`KeyManagerUnavailable` or :class:`KeyManagerRefused` when it cannot be asked.
        """
        ...


def check_certificate_id(certificate_id: str) -> str:
    """Return ``certificate_id`` if it is a plain id; refuse paths, dots and odd characters."""
    if not _CERTIFICATE_ID.fullmatch(certificate_id):
        raise SafetyRefusal(
            CHECK,
            f"{CERTIFICATE_UUID} {certificate_id!r} is not a valid certificate id: use the "
            "certificate's uuid (letters, digits, '-' and '_' only)",
        )
    return certificate_id


def certificate_not_found(certificate_id: str, where: str) -> SafetyRefusal:
    """The refusal for an id the key manager does not know."""
    return SafetyRefusal(
        CHECK,
        f"signing certificate {certificate_id!r} ({CERTIFICATE_UUID}) was not found in "
        f"{where}; store the certificate there or correct the property",
    )


class DirectoryKeyManager:
    """Certificates as ``<certificate_dir>/<uuid>.pem`` files (PEM or DER content)."""

    def __init__(self, certificate_dir: Path) -> None:
        self.certificate_dir = certificate_dir

    async def get_certificate(self, certificate_id: str) -> bytes:
        """Read ``<uuid>.pem`` (in a thread: it is file I/O)."""
        path = self.certificate_dir / f"{check_certificate_id(certificate_id)}.pem"
        try:
            return await asyncio.to_thread(path.read_bytes)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise certificate_not_found(
                certificate_id, f"certificate directory {self.certificate_dir}"
            ) from None
        except OSError as exc:
            raise KeyManagerRefused(
                f"cannot read signing certificate {path}: {exc.strerror}; check the file's "
                "permissions and [signature] certificate_dir"
            ) from None
