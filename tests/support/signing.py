"""A throwaway PKI for signature tests: CAs, certificates, and files signed the way Glance expects.

Keys are cached per (kind, slot): generating DSA parameters is slow, and a test that needs a
*different* key of the same kind asks for another slot.
"""

from __future__ import annotations

import base64
import datetime
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from cryptography.x509.oid import NameOID

from flows.signing.properties import (
    CERTIFICATE_UUID,
    HASH_METHOD,
    HASH_METHODS,
    KEY_TYPE,
    SIGNATURE,
)

KeyKind = Literal["rsa", "dsa", "ec-p256", "ec-p384", "ec-p521"]
PrivateKey = rsa.RSAPrivateKey | dsa.DSAPrivateKey | ec.EllipticCurvePrivateKey

_CURVES: dict[str, ec.EllipticCurve] = {
    "ec-p256": ec.SECP256R1(),
    "ec-p384": ec.SECP384R1(),
    "ec-p521": ec.SECP521R1(),
}
#: The ``img_signature_key_type`` each kind of key signs as (P-256 is not one Glance accepts).
KEY_TYPES: dict[str, str] = {
    "rsa": "RSA-PSS",
    "dsa": "DSA",
    "ec-p256": "ECC_SECP256R1",
    "ec-p384": "ECC_SECP384R1",
    "ec-p521": "ECC_SECP521R1",
}
DAY = datetime.timedelta(days=1)


@functools.cache
def private_key(kind: KeyKind, slot: int = 0) -> PrivateKey:
    """A private key of ``kind``; the same one for the same ``(kind, slot)``."""
    del slot  # part of the cache key only
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "dsa":
        return dsa.generate_private_key(key_size=2048)
    return ec.generate_private_key(_CURVES[kind])


@dataclass(frozen=True)
class Identity:
    """A certificate and its private key."""

    key: PrivateKey
    certificate: x509.Certificate

    @property
    def kind_key_type(self) -> str:
        """The ``img_signature_key_type`` matching this key."""
        key = self.key
        if isinstance(key, rsa.RSAPrivateKey):
            return KEY_TYPES["rsa"]
        if isinstance(key, dsa.DSAPrivateKey):
            return KEY_TYPES["dsa"]
        return f"ECC_{key.curve.name.upper()}"

    def pem(self) -> bytes:
        """The certificate in PEM."""
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def der(self) -> bytes:
        """The certificate in DER (how castellan stores it in Barbican)."""
        return self.certificate.public_bytes(serialization.Encoding.DER)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_certificate(
    common_name: str,
    kind: KeyKind = "rsa",
    *,
    issuer: Identity | None = None,
    is_ca: bool = False,
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
    slot: int = 0,
) -> Identity:
    """A certificate for a ``kind`` key, issued by ``issuer`` (self-signed when None).

    Valid from yesterday for 30 days unless the dates are given.
    """
    now = datetime.datetime.now(datetime.UTC)
    key = private_key(kind, slot)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(issuer.certificate.subject if issuer else _name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - DAY)
        .not_valid_after(not_after or now + 30 * DAY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    signer = issuer.key if issuer else key
    return Identity(key, builder.sign(signer, hashes.SHA256()))


def make_ca(
    common_name: str = "imgworker test CA", kind: KeyKind = "rsa", slot: int = 9
) -> Identity:
    """A self-signed CA certificate (its own key slot, so it never equals a leaf's key)."""
    return make_certificate(common_name, kind, is_ca=True, slot=slot)


def expired(common_name: str, kind: KeyKind, issuer: Identity | None) -> Identity:
    """A certificate whose validity ended yesterday."""
    now = datetime.datetime.now(datetime.UTC)
    return make_certificate(
        common_name, kind, issuer=issuer, not_before=now - 60 * DAY, not_after=now - DAY
    )


def not_yet_valid(common_name: str, kind: KeyKind, issuer: Identity | None) -> Identity:
    """A certificate whose validity starts tomorrow."""
    now = datetime.datetime.now(datetime.UTC)
    return make_certificate(
        common_name, kind, issuer=issuer, not_before=now + DAY, not_after=now + 30 * DAY
    )


def _file_digest(path: Path, algorithm: hashes.HashAlgorithm) -> bytes:
    digest = hashlib.new(algorithm.name)
    with open(path, "rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
    return digest.digest()


def sign_file(path: Path, key: PrivateKey, hash_method: str = "SHA-256") -> bytes:
    """The raw signature of ``path``, as cursive verifies it (RSA-PSS: MGF1, max salt)."""
    algorithm = HASH_METHODS[hash_method]()
    digest = _file_digest(path, algorithm)
    if isinstance(key, rsa.RSAPrivateKey):
        pss = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.MAX_LENGTH)
        return key.sign(digest, pss, Prehashed(algorithm))
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(digest, ec.ECDSA(Prehashed(algorithm)))
    return key.sign(digest, Prehashed(algorithm))


def signature_properties(
    path: Path,
    signer: Identity,
    certificate_uuid: str,
    hash_method: str = "SHA-256",
    *,
    key: PrivateKey | None = None,
) -> dict[str, str]:
    """The four ``img_signature*`` properties of ``path`` signed by ``signer`` (or ``key``)."""
    signature = sign_file(path, key or signer.key, hash_method)
    return {
        SIGNATURE: base64.b64encode(signature).decode(),
        HASH_METHOD: hash_method,
        KEY_TYPE: signer.kind_key_type,
        CERTIFICATE_UUID: certificate_uuid,
    }


def install_certificate(directory: Path, certificate_uuid: str, identity: Identity) -> Path:
    """Write ``<directory>/<uuid>.pem`` (what the directory key manager reads)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{certificate_uuid}.pem"
    path.write_bytes(identity.pem())
    return path
