"""Signing certificates from Barbican, authenticated as the requester or as the worker.

Glance reaches Barbican through castellan, which stores an X.509 certificate as a secret of type
``certificate`` whose payload is the DER bytes (``application/octet-stream``). The payload is
``GET {barbican}/v1/secrets/{uuid}/payload`` with ``X-Auth-Token``.

When the task's context carries the requester's Keystone token (the API sends it for a signed
image, see docs/keystone.md), Barbican is asked with it, as Glance asks with the user's context:
the worker then reads only what the requester may read, and never falls back to its own
credentials. Otherwise the worker's own token is either configured as is, or obtained from
Keystone v3 (``POST /v3/auth/tokens`` with the ``application_credential`` method; the token comes
back in ``X-Subject-Token``) and renewed once when Barbican answers 401.
"""

from __future__ import annotations

import aiohttp

from flows.errors import KeyManagerRefused, KeyManagerUnavailable
from flows.signing.config import SignatureSettings
from flows.signing.keys import certificate_not_found, check_certificate_id

_PAYLOAD_TYPE = "application/octet-stream"


class KeystoneApplicationCredential:
    """Obtains Keystone v3 tokens with an application credential."""

    def __init__(self, keystone_url: str, credential_id: str, secret: str) -> None:
        base = keystone_url.rstrip("/")
        self.tokens_url = (
            f"{base}/auth/tokens" if base.endswith("/v3") else f"{base}/v3/auth/tokens"
        )
        self.credential_id = credential_id
        self._secret = secret

    async def issue(self, session: aiohttp.ClientSession) -> str:
        """A new token (``X-Subject-Token`` of a 201 answer)."""
        body = {
            "auth": {
                "identity": {
                    "methods": ["application_credential"],
                    "application_credential": {"id": self.credential_id, "secret": self._secret},
                }
            }
        }
        try:
            async with session.post(self.tokens_url, json=body) as response:
                token = response.headers.get("X-Subject-Token", "")
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise KeyManagerUnavailable(
                f"Keystone at {self.tokens_url} is unreachable ({exc or type(exc).__name__}); "
                "check [signature] keystone_url and the network, the import will be retried"
            ) from None
        if status == 201 and token:
            return token
        if status in (400, 401, 403, 404):
            raise KeyManagerRefused(
                f"Keystone at {self.tokens_url} refused application credential "
                f"{self.credential_id!r} (HTTP {status}); check [signature] "
                "application_credential_id and application_credential_secret"
            )
        raise KeyManagerUnavailable(
            f"Keystone at {self.tokens_url} answered HTTP {status} without a token; "
            "the import will be retried"
        )


class BarbicanKeyManager:
    """Certificates as Barbican secrets; the key manager of Glance's castellan setup."""

    def __init__(
        self,
        barbican_url: str,
        *,
        token: str = "",
        keystone: KeystoneApplicationCredential | None = None,
        timeout_seconds: float = 30.0,
        requester_token: str | None = None,
    ) -> None:
        self.barbican_url = barbican_url.rstrip("/")
        self._token = requester_token or token
        self._keystone = None if requester_token else keystone
        self._as_requester = bool(requester_token)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)

    @classmethod
    def from_settings(
        cls, settings: SignatureSettings, requester_token: str | None = None
    ) -> BarbicanKeyManager:
        """Built from ``[signature]``: as the requester when their token is given; else a
        configured token wins over the application credential."""
        if requester_token:
            return cls(
                settings.barbican_url,
                timeout_seconds=settings.request_timeout_seconds,
                requester_token=requester_token,
            )
        keystone = None
        if not settings.barbican_token and settings.keystone_url:
            keystone = KeystoneApplicationCredential(
                settings.keystone_url,
                settings.application_credential_id,
                settings.application_credential_secret,
            )
        return cls(
            settings.barbican_url,
            token=settings.barbican_token,
            keystone=keystone,
            timeout_seconds=settings.request_timeout_seconds,
        )

    async def get_certificate(self, certificate_id: str) -> bytes:
        """The secret's payload; with Keystone, a token refused once is renewed once."""
        self._check_configured()
        check_certificate_id(certificate_id)
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            if not self._token:
                self._token = await self._issue(session)
            status, payload = await self._get_payload(session, certificate_id)
            if status == 401 and self._keystone is not None:
                self._token = await self._issue(session)
                status, payload = await self._get_payload(session, certificate_id)
        return self._check_answer(certificate_id, status, payload)

    def _check_configured(self) -> None:
        if not self.barbican_url:
            raise KeyManagerRefused(
                "[signature] key_manager is 'barbican' but barbican_url is empty; "
                "set it to Barbican's endpoint (https://barbican.example:9311)"
            )
        if not self._token and self._keystone is None:
            raise KeyManagerRefused(
                "[signature] key_manager is 'barbican' but neither barbican_token nor "
                "keystone_url with application_credential_id and application_credential_secret "
                "is set; configure one of them"
            )

    async def _issue(self, session: aiohttp.ClientSession) -> str:
        assert self._keystone is not None
        return await self._keystone.issue(session)

    async def _get_payload(
        self, session: aiohttp.ClientSession, certificate_id: str
    ) -> tuple[int, bytes]:
        url = f"{self.barbican_url}/v1/secrets/{certificate_id}/payload"
        headers = {"X-Auth-Token": self._token, "Accept": _PAYLOAD_TYPE}
        try:
            async with session.get(url, headers=headers) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise KeyManagerUnavailable(
                f"Barbican at {self.barbican_url} is unreachable "
                f"({exc or type(exc).__name__}); check [signature] barbican_url and the "
                "network, the import will be retried"
            ) from None

    def _check_answer(self, certificate_id: str, status: int, payload: bytes) -> bytes:
        where = f"Barbican at {self.barbican_url}"
        if status == 200:
            return payload
        if status == 404:
            raise certificate_not_found(certificate_id, where)
        if status == 401 and self._as_requester:
            raise KeyManagerRefused(
                f"{where} refused the requester's token (HTTP 401 Unauthorized): it expired "
                "or was revoked before the import ran; import the image again"
            )
        if status == 401:
            raise KeyManagerRefused(
                f"{where} refused the worker's token (HTTP 401 Unauthorized); set a valid "
                "[signature] barbican_token, or an application credential"
            )
        if status == 403 and self._as_requester:
            raise KeyManagerRefused(
                f"{where} forbids the requester to read secret {certificate_id!r} (HTTP 403); "
                "the certificate must be readable by the user who imports (their project, or "
                "a Barbican ACL)"
            )
        if status == 403:
            raise KeyManagerRefused(
                f"{where} forbids reading secret {certificate_id!r} (HTTP 403); give the "
                "worker's user read access to it (a Barbican ACL or a role on its project)"
            )
        if status == 406:
            raise KeyManagerRefused(
                f"{where} cannot return secret {certificate_id!r} as {_PAYLOAD_TYPE} "
                "(HTTP 406); store the certificate with --payload-content-type "
                f"{_PAYLOAD_TYPE} (see docs/signatures.md)"
            )
        if status >= 500:
            raise KeyManagerUnavailable(
                f"{where} failed (HTTP {status}) reading secret {certificate_id!r}; "
                "the import will be retried"
            )
        raise KeyManagerRefused(f"{where} answered HTTP {status} for secret {certificate_id!r}")
