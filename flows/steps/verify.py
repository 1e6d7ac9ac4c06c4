"""Step ``verify_signature``: check ``img_signature*`` over the bits exactly as staged.

It runs right after staging, before decompression and conversion, so the signature is checked
over the very bytes the signer signed (a qcow2 signed as qcow2 verifies even when it is stored
as raw), and before anything is written to a store.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from flows.context import ImportContext
from flows.signing.names import is_signed

if TYPE_CHECKING:
    from flows.signing.keys import KeyManager

log = logging.getLogger(__name__)


class VerifySignatureStep:
    """Refuses a signed image whose signature fails (and an unsigned one, when required)."""

    name = "verify_signature"

    def __init__(self, key_manager: KeyManager | None = None) -> None:
        #: None: the one ``[signature] key_manager`` names, built when the step runs.
        self.key_manager = key_manager

    async def execute(self, ctx: ImportContext) -> None:
        """Verify ``ctx.staged_path`` against the image's properties; no-op when unsigned."""
        assert ctx.image is not None and ctx.staged_path is not None
        settings = ctx.settings.signature
        if not settings.require_signature and not is_signed(ctx.image.properties):
            return
        # Loaded for signed images only: cryptography, and the Barbican client's aiohttp.
        from flows.signing.key_managers import build_key_manager
        from flows.signing.verifier import verify_image_signature

        keys = self.key_manager or build_key_manager(settings, ctx.requester.token)
        ctx.progress.phase = "verifying signature"
        verified = await verify_image_signature(
            ctx.staged_path, ctx.image.properties, settings, keys, ctx.settings.chunk_size
        )
        if verified is not None:
            log.info("image signature verified (%s)", verified.describe())

    async def revert(self, ctx: ImportContext, error: BaseException) -> None:
        """Nothing to undo: verification writes nothing."""
