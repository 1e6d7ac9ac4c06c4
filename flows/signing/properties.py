"""The ``img_signature*`` image properties: which are set, and what they mean.

The names, hash methods and key types are Glance's (cursive's ``signature_utils``). Of the
elliptic curves cursive registers, only the prime curves P-384 and P-521 remain in current
``cryptography`` (the binary ``SECT*`` curves were removed), so only those are accepted.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes

from flows.errors import SafetyRefusal
from flows.signing.names import (
    CERTIFICATE_UUID,
    HASH_METHOD,
    KEY_TYPE,
    PROPERTIES,
    SIGNATURE,
    is_signed,
)

__all__ = [
    "CERTIFICATE_UUID",
    "CHECK",
    "HASH_METHOD",
    "KEY_TYPE",
    "PROPERTIES",
    "SIGNATURE",
    "SignatureProperties",
    "is_signed",
    "read_signature_properties",
]

#: ``img_signature_hash_method`` values and the digest each names.
HASH_METHODS: dict[str, type[hashes.HashAlgorithm]] = {
    "SHA-224": hashes.SHA224,
    "SHA-256": hashes.SHA256,
    "SHA-384": hashes.SHA384,
    "SHA-512": hashes.SHA512,
}

RSA_PSS = "RSA-PSS"
DSA = "DSA"
#: ``img_signature_key_type`` values for ECDSA, and the curve (as ``cryptography`` names it).
ECC_KEY_TYPES = {"ECC_SECP384R1": "secp384r1", "ECC_SECP521R1": "secp521r1"}
KEY_TYPES = (RSA_PSS, DSA, *ECC_KEY_TYPES)

CHECK = "signature"


@dataclass(frozen=True, slots=True)
class SignatureProperties:
    """A signed image's four properties, decoded and checked for known values."""

    signature: bytes
    hash_method: str
    key_type: str
    certificate_uuid: str

    def hash_algorithm(self) -> hashes.HashAlgorithm:
        """A fresh ``cryptography`` hash object for ``hash_method``."""
        return HASH_METHODS[self.hash_method]()

    def describe(self) -> str:
        """``certificate <uuid>, RSA-PSS with SHA-256``: what the signature claims to be."""
        return f"certificate {self.certificate_uuid!r}, {self.key_type} with {self.hash_method}"


def read_signature_properties(properties: Mapping[str, str]) -> SignatureProperties | None:
    """The image's signature properties, or None when it carries none (an unsigned image).

    An empty value counts as absent. Raises :class:`SafetyRefusal` when some are set and
    some are missing, or when a value is unknown or malformed.
    """
    values = {name: (properties.get(name) or "").strip() for name in PROPERTIES}
    present = [name for name in PROPERTIES if values[name]]
    if not present:
        return None
    missing = [name for name in PROPERTIES if not values[name]]
    if missing:
        raise SafetyRefusal(
            CHECK,
            f"image signature properties are incomplete: {', '.join(present)} set but "
            f"{', '.join(missing)} missing; a signed image needs all of "
            f"{', '.join(PROPERTIES)} (set the missing ones, or remove the others)",
        )
    return SignatureProperties(
        signature=_decode_signature(values[SIGNATURE]),
        hash_method=_known(HASH_METHOD, values[HASH_METHOD], tuple(HASH_METHODS)),
        key_type=_known(KEY_TYPE, values[KEY_TYPE], KEY_TYPES),
        certificate_uuid=values[CERTIFICATE_UUID],
    )


def _known(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise SafetyRefusal(
            CHECK,
            f"{name} {value!r} is not supported; use one of {', '.join(allowed)}",
        )
    return value


def _decode_signature(value: str) -> bytes:
    try:
        decoded = base64.b64decode("".join(value.split()), validate=True)
    except binascii.Error as exc:
        raise SafetyRefusal(
            CHECK,
            f"{SIGNATURE} is not valid base64 ({exc}); set it to the base64 encoding of the "
            "signature file (base64 -w 0 image.sig)",
        ) from None
    if not decoded:
        raise SafetyRefusal(CHECK, f"{SIGNATURE} decodes to nothing; set it to the signature")
    return decoded
