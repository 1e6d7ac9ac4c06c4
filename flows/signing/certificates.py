"""The signing certificate: parsing it, its validity dates, its key type and who issued it.

As cursive does, a certificate is usable only between its ``notBefore`` and ``notAfter``, its
public key must be of the kind ``img_signature_key_type`` names, and, when a trust store is
configured, an issuing CA there must be a CA (basic constraints), allowed to sign certificates
(key usage, when present), within its own dates, and its signature over the certificate valid.
"""

from __future__ import annotations

import datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa

from flows.errors import SafetyRefusal
from flows.signing.properties import CHECK, DSA, ECC_KEY_TYPES, KEY_TYPE, RSA_PSS

#: A public key that can verify an image signature.
VerifyingKey = rsa.RSAPublicKey | dsa.DSAPublicKey | ec.EllipticCurvePublicKey

#: File name suffixes read from the trust store directory.
TRUST_STORE_SUFFIXES = (".pem", ".crt", ".cer")


def load_certificate(data: bytes, certificate_id: str) -> x509.Certificate:
    """Parse a PEM or DER X.509 certificate; refuse anything else."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise SafetyRefusal(
            CHECK,
            f"signing certificate {certificate_id!r} is not a PEM or DER X.509 certificate; "
            "store the certificate itself (not a key or a CSR) under that id",
        ) from None


def check_validity(
    certificate: x509.Certificate, certificate_id: str, now: datetime.datetime
) -> None:
    """Refuse a certificate that is not valid yet, or no longer valid, at ``now`` (UTC)."""
    not_before = certificate.not_valid_before_utc
    not_after = certificate.not_valid_after_utc
    if now < not_before:
        raise SafetyRefusal(
            CHECK,
            f"signing certificate {certificate_id!r} is not valid yet: valid from "
            f"{_utc(not_before)}; wait until then, or sign with a currently valid certificate",
        )
    if now > not_after:
        raise SafetyRefusal(
            CHECK,
            f"signing certificate {certificate_id!r} expired on {_utc(not_after)}; re-sign "
            "the image with a valid certificate and update img_signature*",
        )


def verifying_key(
    certificate: x509.Certificate, certificate_id: str, key_type: str
) -> VerifyingKey:
    """The certificate's public key, refused unless it is of the kind ``key_type`` names."""
    key = certificate.public_key()
    if key_type == RSA_PSS and isinstance(key, rsa.RSAPublicKey):
        return key
    if key_type == DSA and isinstance(key, dsa.DSAPublicKey):
        return key
    curve = ECC_KEY_TYPES.get(key_type)
    if curve is not None and isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == curve:
        return key
    raise SafetyRefusal(
        CHECK,
        f"signing certificate {certificate_id!r} holds {_describe_key(key)}, which does not "
        f"match {KEY_TYPE} {key_type!r}; set the key type of the key that signed the image",
    )


def load_trust_store(directory: Path) -> list[x509.Certificate]:
    """Every certificate in the directory's ``*.pem``/``*.crt``/``*.cer`` files (blocking)."""
    anchors: list[x509.Certificate] = []
    try:
        paths = sorted(p for p in directory.iterdir() if p.suffix in TRUST_STORE_SUFFIXES)
    except OSError as exc:
        raise SafetyRefusal(
            CHECK,
            f"trust store {directory} cannot be read ({exc.strerror}); fix [signature] "
            "trust_store_dir",
        ) from None
    for path in paths:
        try:
            data = path.read_bytes()
            if b"-----BEGIN CERTIFICATE-----" in data:
                anchors.extend(x509.load_pem_x509_certificates(data))
            else:
                anchors.append(x509.load_der_x509_certificate(data))
        except (OSError, ValueError) as exc:
            raise SafetyRefusal(
                CHECK,
                f"trust store file {path} is not a readable X.509 certificate ({exc}); "
                "remove or fix it",
            ) from None
    return anchors


def check_trusted(
    certificate: x509.Certificate,
    certificate_id: str,
    anchors: list[x509.Certificate],
    trust_store: Path,
    now: datetime.datetime,
) -> None:
    """Refuse ``certificate`` unless it is in the trust store or issued by a usable CA there."""
    if not anchors:
        raise SafetyRefusal(
            CHECK,
            f"trust store {trust_store} holds no CA certificate, so no signature can be "
            "trusted; add the CA certificates (*.pem) or unset [signature] trust_store_dir",
        )
    if certificate in anchors:
        return
    for ca in anchors:
        if _is_issuer(ca, certificate, now):
            return
    raise SafetyRefusal(
        CHECK,
        f"signing certificate {certificate_id!r} (subject {certificate.subject.rfc4514_string()}, "
        f"issuer {certificate.issuer.rfc4514_string()}) is not issued by any valid CA "
        f"certificate in trust store {trust_store}; sign with a certificate from a trusted CA, "
        "or add its CA certificate to the trust store",
    )


def _is_issuer(ca: x509.Certificate, certificate: x509.Certificate, now: datetime.datetime) -> bool:
    if ca.subject != certificate.issuer or not _can_sign_certificates(ca):
        return False
    if not ca.not_valid_before_utc <= now <= ca.not_valid_after_utc:
        return False
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _can_sign_certificates(ca: x509.Certificate) -> bool:
    try:
        constraints = ca.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return False
    if not constraints.ca:
        return False
    try:
        usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return usage.key_cert_sign


def _describe_key(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return f"an RSA key ({key.key_size} bits)"
    if isinstance(key, dsa.DSAPublicKey):
        return f"a DSA key ({key.key_size} bits)"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an elliptic curve key on {key.curve.name}"
    return f"a {type(key).__name__}"


def _utc(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
