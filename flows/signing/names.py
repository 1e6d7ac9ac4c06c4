"""The ``img_signature*`` property names, and whether an image carries any of them.

Kept apart from :mod:`flows.signing.properties` so that telling a signed image from an
unsigned one loads nothing of ``cryptography``.
"""

from __future__ import annotations

from collections.abc import Mapping

SIGNATURE = "img_signature"
HASH_METHOD = "img_signature_hash_method"
KEY_TYPE = "img_signature_key_type"
CERTIFICATE_UUID = "img_signature_certificate_uuid"
#: Every property a signed image carries, in the order they are reported.
PROPERTIES = (SIGNATURE, HASH_METHOD, KEY_TYPE, CERTIFICATE_UUID)


def is_signed(properties: Mapping[str, str]) -> bool:
    """Whether the image carries any ``img_signature*`` property (an empty value is absent)."""
    return any((properties.get(name) or "").strip() for name in PROPERTIES)
