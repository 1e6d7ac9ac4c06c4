"""Verifying an image file against its ``img_signature*`` properties, as Glance's cursive does.

The file is hashed with ``img_signature_hash_method`` and the digest verified with the signing
certificate's public key: RSA-PSS with MGF1 over the same hash and the maximum salt length
(cursive's ``padding.PSS.MAX_LENGTH``), ECDSA, or DSA. Before the data is read, the certificate
must be valid now, hold the key type the image claims, and (with a trust store) be issued by a
trusted CA: a refused certificate costs no hashing.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from flows.errors import SafetyRefusal
from flows.hashing import digest_file
from flows.signing.certificates import (
    VerifyingKey,
    check_trusted,
    check_validity,
    load_certificate,
    load_trust_store,
    verifying_key,
)
from flows.signing.config import SignatureSettings
from flows.signing.keys import KeyManager
from flows.signing.properties import CHECK, SignatureProperties, read_signature_properties
from flows.sparse import DEFAULT_CHUNK_SIZE
from flows.threads import run_stoppable


async def verify_image_signature(
    path: Path,
    properties: Mapping[str, str],
    settings: SignatureSettings,
    keys: KeyManager,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> SignatureProperties | None:
    """Verify ``path`` against the image's properties; return what was verified.

    Returns None for an unsigned image (allowed unless ``require_signature``). Raises
    :class:`SafetyRefusal` (check ``signature``) for every reason to refuse the image.
    """
    signed = read_signature_properties(properties)
    if signed is None:
        if settings.require_signature:
            raise SafetyRefusal(
                CHECK,
                "image is not signed (no img_signature* properties) and [signature] "
                "require_signature is set; sign the image and set img_signature, "
                "img_signature_hash_method, img_signature_key_type and "
                "img_signature_certificate_uuid (docs/signatures.md)",
            )
        return None
    key = await signing_key(signed, settings, keys)
    algorithm = signed.hash_algorithm()
    digest = await run_stoppable(
        lambda stop: bytes.fromhex(digest_file(path, algorithm.name, chunk_size, stop))
    )
    check_signature(key, signed, digest)
    return signed


async def signing_key(
    signed: SignatureProperties,
    settings: SignatureSettings,
    keys: KeyManager,
    now: datetime.datetime | None = None,
) -> VerifyingKey:
    """Fetch the certificate and return its public key once every certificate check passed."""
    certificate_id = signed.certificate_uuid
    certificate = load_certificate(await keys.get_certificate(certificate_id), certificate_id)
    now = now or datetime.datetime.now(datetime.UTC)
    check_validity(certificate, certificate_id, now)
    key = verifying_key(certificate, certificate_id, signed.key_type)
    if settings.trust_store_dir is not None:
        anchors = await asyncio.to_thread(load_trust_store, settings.trust_store_dir)
        check_trusted(certificate, certificate_id, anchors, settings.trust_store_dir, now)
    return key


def check_signature(key: VerifyingKey, signed: SignatureProperties, digest: bytes) -> None:
    """Verify the signature over ``digest`` (already computed with ``signed.hash_method``)."""
    algorithm = signed.hash_algorithm()
    prehashed = Prehashed(algorithm)
    try:
        if isinstance(key, rsa.RSAPublicKey):
            pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.MAX_LENGTH)
            key.verify(signed.signature, digest, pss, prehashed)
        elif isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signed.signature, digest, ec.ECDSA(prehashed))
        else:
            key.verify(signed.signature, digest, prehashed)
    except (InvalidSignature, ValueError):
        raise SafetyRefusal(
            CHECK,
            f"image signature does not match the image data ({signed.describe()}): the data "
            "was altered, or signed with another key, hash method or padding; re-sign the "
            "exact file you upload (RSA-PSS: salt length max) and update img_signature",
        ) from None
