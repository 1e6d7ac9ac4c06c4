"""Signature verification: good signatures verify, each bad case is refused with its own message."""

from __future__ import annotations

import base64
import dataclasses
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from flows.errors import KeyManagerRefused, KeyManagerUnavailable, SafetyRefusal
from flows.hashing import digest_file
from flows.signing.barbican import BarbicanKeyManager, KeystoneApplicationCredential
from flows.signing.config import SignatureSettings
from flows.signing.key_managers import build_key_manager
from flows.signing.keys import DirectoryKeyManager, KeyManager
from flows.signing.properties import (
    CERTIFICATE_UUID,
    HASH_METHOD,
    HASH_METHODS,
    KEY_TYPE,
    PROPERTIES,
    SIGNATURE,
    SignatureProperties,
)
from flows.signing.verifier import verify_image_signature
from tests.support.http import serve_app
from tests.support.signing import (
    Identity,
    KeyKind,
    expired,
    install_certificate,
    make_ca,
    make_certificate,
    not_yet_valid,
    private_key,
    signature_properties,
)

CERT_UUID = "3f1c2a56-9b0e-4c1d-8f7a-2e5b6c7d8e9f"
#: Small chunks so that a test file is hashed in several pieces.
CHUNK = 64 * 1024


@dataclass
class Pki:
    """A CA in a trust store, a certificate directory, and a file to sign."""

    root: Path
    ca: Identity
    image: Path
    certificates: Path = field(init=False)
    trust_store: Path = field(init=False)

    def __post_init__(self) -> None:
        self.certificates = self.root / "certificates"
        self.trust_store = self.root / "trust"
        self.trust_store.mkdir()
        (self.trust_store / "ca.pem").write_bytes(self.ca.pem())

    def settings(self, **changes: object) -> SignatureSettings:
        base = SignatureSettings(
            certificate_dir=self.certificates, trust_store_dir=self.trust_store
        )
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]

    def leaf(self, kind: KeyKind = "rsa", uuid: str = CERT_UUID) -> Identity:
        identity = make_certificate("image signer", kind, issuer=self.ca)
        install_certificate(self.certificates, uuid, identity)
        return identity

    async def verify(
        self,
        properties: dict[str, str],
        settings: SignatureSettings | None = None,
        keys: KeyManager | None = None,
    ) -> SignatureProperties | None:
        settings = settings or self.settings()
        keys = keys or DirectoryKeyManager(self.certificates)
        return await verify_image_signature(self.image, properties, settings, keys, CHUNK)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    image = tmp_path / "image.bin"
    with open(image, "wb") as handle:
        handle.write(bytes(range(256)) * 1024)  # 256 KiB of data ...
        handle.truncate(1024 * 1024)  # ... and a hole: hashed as zeros, never read
    return Pki(tmp_path, make_ca(), image)


async def refused(pki: Pki, properties: dict[str, str], **settings: object) -> str:
    """The message of the refusal ``properties`` earn."""
    with pytest.raises(SafetyRefusal) as caught:
        await pki.verify(properties, pki.settings(**settings))
    assert caught.value.check == "signature"
    return caught.value.message


# -- good signatures --------------------------------------------------------------------------


@pytest.mark.parametrize("hash_method", sorted(HASH_METHODS))
@pytest.mark.parametrize("kind", ["rsa", "ec-p384", "ec-p521", "dsa"])
async def test_good_signature_verifies(pki: Pki, kind: KeyKind, hash_method: str) -> None:
    signer = pki.leaf(kind)
    properties = signature_properties(pki.image, signer, CERT_UUID, hash_method)
    verified = await pki.verify(properties)
    assert verified is not None
    assert (verified.hash_method, verified.key_type) == (hash_method, signer.kind_key_type)


async def test_self_signed_certificate_verifies_without_a_trust_store(pki: Pki) -> None:
    signer = make_certificate("lone signer", "ec-p384")
    install_certificate(pki.certificates, CERT_UUID, signer)
    properties = signature_properties(pki.image, signer, CERT_UUID)
    assert await pki.verify(properties, pki.settings(trust_store_dir=None)) is not None


async def test_certificate_pinned_in_the_trust_store_verifies(pki: Pki) -> None:
    signer = make_certificate("pinned signer", "rsa")
    install_certificate(pki.certificates, CERT_UUID, signer)
    (pki.trust_store / "pinned.crt").write_bytes(signer.pem())
    assert await pki.verify(signature_properties(pki.image, signer, CERT_UUID)) is not None


async def test_unsigned_image_passes_unless_a_signature_is_required(pki: Pki) -> None:
    assert await pki.verify({"hw_disk_bus": "virtio"}) is None
    message = await refused(pki, {"hw_disk_bus": "virtio"}, require_signature=True)
    assert "image is not signed" in message and "require_signature" in message


# -- the data does not match ------------------------------------------------------------------


async def test_tampered_data_is_refused(pki: Pki) -> None:
    properties = signature_properties(pki.image, pki.leaf(), CERT_UUID)
    with open(pki.image, "r+b") as handle:
        handle.seek(700 * 1024)  # inside the hole: the change must still be seen
        handle.write(b"\x01")
    message = await refused(pki, properties)
    assert message.startswith("image signature does not match the image data")
    assert CERT_UUID in message


async def test_signature_by_another_key_is_refused(pki: Pki) -> None:
    signer = pki.leaf("rsa")
    properties = signature_properties(pki.image, signer, CERT_UUID, key=private_key("rsa", slot=1))
    assert (await refused(pki, properties)).startswith("image signature does not match")


async def test_rsa_pss_salt_length_is_recovered_from_the_signature(pki: Pki) -> None:
    """cursive verifies with ``PSS.MAX_LENGTH``, which OpenSSL 3 treats as "recover the salt
    length": a signature with a digest-length salt verifies too (Glance on OpenSSL 1.1 may not).
    """
    signer = pki.leaf("rsa")
    properties = signature_properties(pki.image, signer, CERT_UUID)
    assert isinstance(signer.key, rsa.RSAPrivateKey)
    algorithm = HASH_METHODS["SHA-256"]()
    digest = bytes.fromhex(digest_file(pki.image, "sha256"))
    short_salt = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=padding.PSS.DIGEST_LENGTH)
    signature = signer.key.sign(digest, short_salt, Prehashed(algorithm))
    properties[SIGNATURE] = base64.b64encode(signature).decode()
    assert await pki.verify(properties) is not None
    properties[SIGNATURE] = base64.b64encode(signature[:-1] + bytes([signature[-1] ^ 1])).decode()
    assert (await refused(pki, properties)).startswith("image signature does not match")


# -- the certificate --------------------------------------------------------------------------


async def test_expired_certificate_is_refused(pki: Pki) -> None:
    signer = expired("old signer", "rsa", pki.ca)
    install_certificate(pki.certificates, CERT_UUID, signer)
    message = await refused(pki, signature_properties(pki.image, signer, CERT_UUID))
    assert f"signing certificate {CERT_UUID!r} expired on" in message


async def test_not_yet_valid_certificate_is_refused(pki: Pki) -> None:
    signer = not_yet_valid("future signer", "ec-p384", pki.ca)
    install_certificate(pki.certificates, CERT_UUID, signer)
    message = await refused(pki, signature_properties(pki.image, signer, CERT_UUID))
    assert f"signing certificate {CERT_UUID!r} is not valid yet" in message


async def test_unknown_certificate_uuid_is_refused(pki: Pki) -> None:
    properties = signature_properties(pki.image, pki.leaf(), CERT_UUID)
    properties[CERTIFICATE_UUID] = "0000aaaa-0000-0000-0000-000000000000"
    message = await refused(pki, properties)
    assert "'0000aaaa-0000-0000-0000-000000000000'" in message
    assert f"was not found in certificate directory {pki.certificates}" in message


@pytest.mark.parametrize(
    "uuid", ["../trust/ca", "/etc/passwd", "a/b", "ca.pem", "..", "a b", "%2e%2e"]
)
async def test_path_tricks_in_the_uuid_are_refused(pki: Pki, uuid: str) -> None:
    properties = signature_properties(pki.image, pki.leaf(), CERT_UUID)
    properties[CERTIFICATE_UUID] = uuid
    message = await refused(pki, properties)
    assert "is not a valid certificate id" in message


async def test_certificate_from_an_untrusted_ca_is_refused(pki: Pki) -> None:
    other_ca = make_ca("someone else's CA", slot=8)
    signer = make_certificate("foreign signer", "rsa", issuer=other_ca)
    install_certificate(pki.certificates, CERT_UUID, signer)
    message = await refused(pki, signature_properties(pki.image, signer, CERT_UUID))
    assert "is not issued by any valid CA certificate in trust store" in message
    assert "someone else's CA" in message  # the issuer is named


async def test_self_signed_untrusted_certificate_is_refused(pki: Pki) -> None:
    signer = make_certificate("self-made signer", "rsa")
    install_certificate(pki.certificates, CERT_UUID, signer)
    message = await refused(pki, signature_properties(pki.image, signer, CERT_UUID))
    assert "is not issued by any valid CA certificate in trust store" in message


async def test_issuer_that_is_not_a_ca_is_not_trusted(pki: Pki) -> None:
    not_a_ca = make_certificate("plain leaf", "ec-p384", slot=7)
    (pki.trust_store / "leaf.pem").write_bytes(not_a_ca.pem())
    signer = make_certificate("signer", "rsa", issuer=not_a_ca)
    install_certificate(pki.certificates, CERT_UUID, signer)
    message = await refused(pki, signature_properties(pki.image, signer, CERT_UUID))
    assert "is not issued by any valid CA certificate" in message


async def test_empty_trust_store_is_refused(pki: Pki) -> None:
    properties = signature_properties(pki.image, pki.leaf(), CERT_UUID)
    (pki.trust_store / "ca.pem").unlink()
    assert "holds no CA certificate" in await refused(pki, properties)


async def test_certificate_file_that_is_not_a_certificate_is_refused(pki: Pki) -> None:
    properties = signature_properties(pki.image, pki.leaf(), CERT_UUID)
    (pki.certificates / f"{CERT_UUID}.pem").write_bytes(b"-----BEGIN NONSENSE-----\n")
    assert "is not a PEM or DER X.509 certificate" in await refused(pki, properties)


async def test_key_type_must_match_the_certificate(pki: Pki) -> None:
    properties = signature_properties(pki.image, pki.leaf("rsa"), CERT_UUID)
    properties[KEY_TYPE] = "ECC_SECP384R1"
    message = await refused(pki, properties)
    assert "holds an RSA key (2048 bits), which does not match" in message


async def test_curve_must_match_the_key_type(pki: Pki) -> None:
    properties = signature_properties(pki.image, pki.leaf("ec-p384"), CERT_UUID)
    properties[KEY_TYPE] = "ECC_SECP521R1"
    message = await refused(pki, properties)
    assert "an elliptic curve key on secp384r1, which does not match" in message


# -- the properties ---------------------------------------------------------------------------


@pytest.mark.parametrize("missing", PROPERTIES)
async def test_incomplete_properties_are_refused(pki: Pki, missing: str) -> None:
    properties = signature_properties(pki.image, pki.leaf(), CERT_UUID)
    properties[missing] = ""
    message = await refused(pki, properties)
    assert message.startswith("image signature properties are incomplete")
    assert f"but {missing} missing" in message


async def test_bad_base64_is_refused(pki: Pki) -> None:
    properties = signature_properties(pki.image, pki.leaf(), CERT_UUID)
    properties[SIGNATURE] = "not*base64!"
    assert "img_signature is not valid base64" in await refused(pki, properties)


async def test_unknown_hash_method_is_refused(pki: Pki) -> None:
    properties = signature_properties(pki.image, pki.leaf(), CERT_UUID)
    properties[HASH_METHOD] = "MD5"
    message = await refused(pki, properties)
    assert "img_signature_hash_method 'MD5' is not supported" in message
    assert "SHA-224, SHA-256, SHA-384, SHA-512" in message


async def test_p256_is_not_a_key_type_glance_accepts(pki: Pki) -> None:
    signer = pki.leaf("ec-p256")
    message = await refused(pki, signature_properties(pki.image, signer, CERT_UUID))
    assert "img_signature_key_type 'ECC_SECP256R1' is not supported" in message
    assert "ECC_SECP384R1" in message


# -- Barbican ---------------------------------------------------------------------------------


@dataclass
class FakeBarbican:
    """Barbican's payload call and Keystone's token call, on one loopback server."""

    secrets: dict[str, bytes]
    credential: tuple[str, str] = ("app-cred-id", "app-cred-secret")
    tokens: set[str] = field(default_factory=lambda: {"static-token"})
    issued: int = 0
    accepts: list[str] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/identity/v3/auth/tokens", self.issue)
        app.router.add_get("/v1/secrets/{uuid}/payload", self.payload)
        return app

    async def issue(self, request: web.Request) -> web.Response:
        body = await request.json()
        identity = body["auth"]["identity"]
        credential = identity.get("application_credential", {})
        if (
            identity["methods"] != ["application_credential"]
            or (
                credential.get("id"),
                credential.get("secret"),
            )
            != self.credential
        ):
            return web.json_response({"error": {"code": 401}}, status=401)
        self.issued += 1
        token = f"issued-{self.issued}"
        self.tokens.add(token)
        return web.json_response({"token": {}}, status=201, headers={"X-Subject-Token": token})

    async def payload(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Auth-Token") not in self.tokens:
            return web.Response(status=401, text="Authentication required")
        self.accepts.append(request.headers.get("Accept", ""))
        uuid = request.match_info["uuid"]
        if uuid not in self.secrets:
            return web.Response(status=404, text="Secret not found.")
        return web.Response(body=self.secrets[uuid], content_type="application/octet-stream")


@asynccontextmanager
async def serve(barbican: FakeBarbican) -> AsyncIterator[str]:
    async with serve_app(barbican.app()) as base:
        yield base


@pytest.fixture
def closed_port() -> Iterator[int]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    yield port


async def test_barbican_with_a_token_serves_the_certificate(pki: Pki) -> None:
    signer = make_certificate("barbican signer", "rsa", issuer=pki.ca)
    barbican = FakeBarbican({CERT_UUID: signer.der()})
    properties = signature_properties(pki.image, signer, CERT_UUID, "SHA-384")
    async with serve(barbican) as url:
        keys = BarbicanKeyManager(url, token="static-token")
        verified = await pki.verify(properties, keys=keys)
    assert verified is not None and verified.certificate_uuid == CERT_UUID
    assert barbican.accepts == ["application/octet-stream"]


async def test_barbican_with_an_application_credential_renews_a_refused_token(pki: Pki) -> None:
    signer = make_certificate("barbican signer", "ec-p521", issuer=pki.ca)
    barbican = FakeBarbican({CERT_UUID: signer.pem()})
    async with serve(barbican) as url:
        settings = pki.settings(
            key_manager="barbican",
            barbican_url=url,
            keystone_url=f"{url}/identity/v3",
            application_credential_id="app-cred-id",
            application_credential_secret="app-cred-secret",
        )
        keys = build_key_manager(settings)
        assert isinstance(keys, BarbicanKeyManager)
        assert await keys.get_certificate(CERT_UUID) == signer.pem()
        assert barbican.issued == 1
        assert await keys.get_certificate(CERT_UUID) == signer.pem()
        assert barbican.issued == 1  # the token is reused
        barbican.tokens.clear()  # Barbican now refuses it: expired
        assert await keys.get_certificate(CERT_UUID) == signer.pem()
        assert barbican.issued == 2


async def test_barbican_unknown_secret_is_refused_as_unknown_certificate(pki: Pki) -> None:
    async with serve(FakeBarbican({})) as url:
        keys = BarbicanKeyManager(url, token="static-token")
        with pytest.raises(SafetyRefusal) as caught:
            await keys.get_certificate(CERT_UUID)
    assert caught.value.check == "signature"
    assert f"{CERT_UUID!r} ({CERTIFICATE_UUID}) was not found in Barbican at {url}" in str(
        caught.value
    )


async def test_barbican_401_names_the_token() -> None:
    async with serve(FakeBarbican({})) as url:
        keys = BarbicanKeyManager(url, token="stale-token")
        with pytest.raises(KeyManagerRefused) as caught:
            await keys.get_certificate(CERT_UUID)
    assert "refused the worker's token (HTTP 401 Unauthorized)" in str(caught.value)
    assert not caught.value.transient


async def test_keystone_refusing_the_application_credential_is_reported() -> None:
    async with serve(FakeBarbican({})) as url:
        keystone = KeystoneApplicationCredential(f"{url}/identity/v3", "app-cred-id", "wrong")
        keys = BarbicanKeyManager(url, keystone=keystone)
        with pytest.raises(KeyManagerRefused) as caught:
            await keys.get_certificate(CERT_UUID)
    assert "refused application credential 'app-cred-id' (HTTP 401)" in str(caught.value)


async def test_unreachable_barbican_is_transient(closed_port: int) -> None:
    keys = BarbicanKeyManager(f"http://127.0.0.1:{closed_port}", token="static-token")
    with pytest.raises(KeyManagerUnavailable) as caught:
        await keys.get_certificate(CERT_UUID)
    assert f"Barbican at http://127.0.0.1:{closed_port} is unreachable" in str(caught.value)
    assert caught.value.transient


async def test_barbican_without_credentials_says_what_to_configure() -> None:
    keys = build_key_manager(SignatureSettings(key_manager="barbican", barbican_url="http://b"))
    with pytest.raises(KeyManagerRefused) as caught:
        await keys.get_certificate(CERT_UUID)
    assert "neither barbican_token nor keystone_url" in str(caught.value)


async def test_barbican_refuses_path_tricks_before_asking(closed_port: int) -> None:
    keys = BarbicanKeyManager(f"http://127.0.0.1:{closed_port}", token="t")
    with pytest.raises(SafetyRefusal) as caught:
        await keys.get_certificate("../../v1/containers")
    assert "is not a valid certificate id" in str(caught.value)


async def test_barbican_is_asked_as_the_requester_when_their_token_came(pki: Pki) -> None:
    signer = make_certificate("barbican signer", "rsa", issuer=pki.ca)
    barbican = FakeBarbican({CERT_UUID: signer.der()}, tokens={"users-token"})
    async with serve(barbican) as url:
        settings = pki.settings(
            key_manager="barbican",
            barbican_url=url,
            keystone_url=f"{url}/identity/v3",
            application_credential_id="app-cred-id",
            application_credential_secret="app-cred-secret",
        )
        keys = build_key_manager(settings, requester_token="users-token")
        assert await keys.get_certificate(CERT_UUID) == signer.der()
        barbican.tokens.clear()  # the user's token expired before the import ran
        with pytest.raises(KeyManagerRefused) as caught:
            await build_key_manager(settings, "users-token").get_certificate(CERT_UUID)
    assert "refused the requester's token (HTTP 401 Unauthorized)" in str(caught.value)
    assert barbican.issued == 0  # never the worker's own credential instead of the user's
