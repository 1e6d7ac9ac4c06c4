"""Keystone v3 for ``imgworker api``: the service's own token, and every caller's token checked.

The API authenticates itself as the ``[keystone]`` service user (password or application
credential), keeps that token and renews it before it expires or when Keystone refuses it, and
validates each caller's ``X-Auth-Token`` with ``GET /v3/auth/tokens`` (``X-Subject-Token``),
which is what keystonemiddleware does for Glance. A valid token's identity is cached for
``cache_seconds`` at most, and never past the token's expiry, so a revoked token is refused at
the latest ``cache_seconds`` after its revocation.

Typed outcomes: :class:`InvalidToken` (a 401 for the caller), :class:`KeystoneUnavailable`
(Keystone cannot answer now: a 503, never a 500), and its kind :class:`ServiceAuthRefused`
(Keystone refuses the service's own credentials: a 503 too, and an error in the log for the
operator). Why this client and not keystonemiddleware: docs/keystone.md.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from flows.errors import TransientError
from worker.config.settings import KeystoneSettings

log = logging.getLogger(__name__)

#: What a token may look like before Keystone is asked (fernet tokens are ~200 characters of
#: URL-safe base64; anything unprintable or huge is refused without a round trip).
_TOKEN = re.compile(r"[!-~]{1,8192}")
#: The service's token is renewed this long before it expires (or with a quarter of its life
#: left, when that is sooner).
_RENEW_MARGIN_SECONDS = 300.0


class InvalidToken(Exception):
    """The caller's token is not valid: unknown, malformed, expired or revoked."""


class KeystoneUnavailable(TransientError):
    """Keystone cannot validate tokens now (down, slow, failing); a retry may work."""

    reason = "keystone_unavailable"


class ServiceAuthRefused(KeystoneUnavailable):
    """Keystone refuses the service's own credentials, or lets it validate no token."""

    reason = "keystone_service_auth_refused"


#: What the caller is told for either (the details are in the API's log).
UNAVAILABLE = "The identity service cannot check your token now; try again shortly."


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a valid token says about its bearer."""

    user_id: str
    #: None for a token not scoped to a project (unscoped, domain or system scope).
    project_id: str | None
    #: Role names, lower-cased, implied roles included (Keystone expands them).
    roles: tuple[str, ...]
    expires_at: datetime.datetime


def _utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class TokenCache:
    """Validated tokens by their SHA-256, each kept until its deadline; LRU-bounded."""

    def __init__(
        self,
        seconds: float,
        entries: int,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime.datetime] = _utcnow,
    ) -> None:
        self.seconds = seconds
        self.entries = entries
        self._clock = clock
        self._wall = wall
        self._items: OrderedDict[str, tuple[float, TokenInfo]] = OrderedDict()

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str) -> TokenInfo | None:
        """The cached identity of ``token``, or None when absent or past its deadline."""
        key = self._key(token)
        item = self._items.get(key)
        if item is None:
            return None
        deadline, info = item
        if self._clock() >= deadline:
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return info

    def put(self, token: str, info: TokenInfo) -> None:
        """Keep ``info`` for ``cache_seconds``, or until the token expires if that is sooner."""
        ttl = min(self.seconds, (info.expires_at - self._wall()).total_seconds())
        if ttl <= 0:
            return
        key = self._key(token)
        self._items[key] = (self._clock() + ttl, info)
        self._items.move_to_end(key)
        while len(self._items) > self.entries:
            self._items.popitem(last=False)


@dataclass(frozen=True, slots=True)
class _ServiceToken:
    token: str
    #: ``time.monotonic()`` after which it is renewed.
    renew_at: float
    catalog: list[dict[str, Any]]


class KeystoneClient:
    """Validates callers' tokens against Keystone v3 with the service's own token."""

    def __init__(self, settings: KeystoneSettings, clock: Callable[[], float] = time.monotonic):
        base = settings.auth_url.rstrip("/")
        self.url = base if base.endswith("/v3") else f"{base}/v3"
        self.settings = settings
        self.cache = TokenCache(settings.cache_seconds, settings.cache_entries, clock)
        self._clock = clock
        self._service: _ServiceToken | None = None
        self._service_lock = asyncio.Lock()
        self._session: aiohttp.ClientSession | None = None

    @property
    def challenge(self) -> str:
        """``WWW-Authenticate`` of a 401, as keystonemiddleware sends it."""
        return f'Keystone uri="{self.settings.www_authenticate_uri or self.url}"'

    async def validate(self, token: str) -> TokenInfo:
        """The identity ``token`` carries; raise :class:`InvalidToken` or
        :class:`KeystoneUnavailable`."""
        if not _TOKEN.fullmatch(token):
            raise InvalidToken("malformed token")
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        info = await self._ask(token)
        self.cache.put(token, info)
        return info

    async def image_endpoints(self) -> list[str]:
        """The ``image`` endpoints of ``region_name`` in the catalog the service user sees."""
        service = await self._service_token()
        urls = []
        for entry in service.catalog:
            if entry.get("type") != "image":
                continue
            for endpoint in entry.get("endpoints", []):
                if endpoint.get("region_id") == self.settings.region_name:
                    urls.append(f"{endpoint.get('interface')} {endpoint.get('url')}")
        return urls

    async def __aenter__(self) -> KeystoneClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- validation -----------------------------------------------------------------------

    async def _ask(self, token: str) -> TokenInfo:
        for attempt in (1, 2):
            service = await self._service_token()
            status, body, _ = await self._request(
                "GET",
                f"{self.url}/auth/tokens?nocatalog",
                headers={"X-Auth-Token": service.token, "X-Subject-Token": token},
            )
            if status == 200:
                return _token_info(body.get("token"))
            if status == 404:
                raise InvalidToken("Keystone does not know the token, or it expired or was revoked")
            if status == 401 and attempt == 1:
                self._forget(service)  # ours expired or was revoked: one more try with a new one
                continue
            if status in (401, 403):
                raise self._refused(
                    f"Keystone at {self.url} does not let the service user validate tokens "
                    f"(HTTP {status}); give the [keystone] user the service role on its project"
                )
            break
        raise self._unavailable(f"Keystone at {self.url} answered HTTP {status} to a validation")

    # -- the service's own token ----------------------------------------------------------

    async def _service_token(self) -> _ServiceToken:
        async with self._service_lock:
            service = self._service
            if service is None or self._clock() >= service.renew_at:
                service = self._service = await self._issue()
            return service

    def _forget(self, service: _ServiceToken) -> None:
        if self._service is service:
            self._service = None

    async def _issue(self) -> _ServiceToken:
        status, body, token = await self._request(
            "POST", f"{self.url}/auth/tokens", json={"auth": self._auth_body()}
        )
        if status == 201 and token:
            return self._service_from(token, body.get("token"))
        if status in (400, 401, 403, 404):
            raise self._refused(
                f"Keystone at {self.url} refused the service credentials of [keystone] "
                f"({self._who()}; HTTP {status}); check them"
            )
        raise self._unavailable(f"Keystone at {self.url} answered HTTP {status} to a login")

    def _service_from(self, token: str, data: Any) -> _ServiceToken:
        try:
            expires = _timestamp(data["expires_at"])
            issued = _timestamp(data.get("issued_at") or _utcnow().isoformat())
            catalog = list(data.get("catalog") or [])
        except (TypeError, KeyError, ValueError) as exc:
            detail = f"Keystone at {self.url} sent a service token without expiry: {exc}"
            raise self._unavailable(detail) from None
        now = _utcnow()
        life = (expires - now).total_seconds()
        margin = min(_RENEW_MARGIN_SECONDS, (expires - issued).total_seconds() / 4)
        return _ServiceToken(token, self._clock() + life - margin, catalog)

    def _auth_body(self) -> dict[str, Any]:
        settings = self.settings
        if settings.application_credential_id:
            secret = settings.application_credential_secret
            assert secret is not None
            return {
                "identity": {
                    "methods": ["application_credential"],
                    "application_credential": {
                        "id": settings.application_credential_id,
                        "secret": secret.get_secret_value(),
                    },
                }
            }
        assert settings.password is not None
        user = {
            "name": settings.username,
            "domain": {"name": settings.user_domain_name},
            "password": settings.password.get_secret_value(),
        }
        project = {"name": settings.project_name, "domain": {"name": settings.project_domain_name}}
        return {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": project},
        }

    def _who(self) -> str:
        settings = self.settings
        if settings.application_credential_id:
            return f"application credential {settings.application_credential_id!r}"
        return f"user {settings.username!r} in project {settings.project_name!r}"

    # -- HTTP -----------------------------------------------------------------------------

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(
                total=self.settings.request_timeout_seconds,
                sock_connect=self.settings.connect_timeout_seconds,
            )
            self._session = aiohttp.ClientSession(timeout=timeout)
        return self._session

    async def _request(
        self, method: str, url: str, **options: Any
    ) -> tuple[int, dict[str, Any], str]:
        """Status, JSON object body (or ``{}``) and ``X-Subject-Token`` of one request.

        A connection that breaks is tried once more on a new one: a pooled connection to a
        Keystone that restarted fails once although Keystone answers again.
        """
        for attempt in (1, 2):
            try:
                async with self._http().request(method, url, **options) as response:
                    body: Any = {}
                    if response.content_type == "application/json":
                        body = await response.json()
                    token = response.headers.get("X-Subject-Token", "")
                    return response.status, body if isinstance(body, dict) else {}, token
            except TimeoutError as exc:  # aiohttp's timeouts too: waiting again will not help
                failure: Exception = exc
            except aiohttp.ClientConnectionError as exc:
                failure = exc
                if attempt == 1:
                    continue
            except (aiohttp.ClientError, ValueError) as exc:
                failure = exc
            break
        raise self._unavailable(
            f"Keystone at {self.url} is unreachable ({type(failure).__name__}: {failure}); "
            "check [keystone] auth_url and that Keystone runs"
        )

    # -- errors ---------------------------------------------------------------------------

    @staticmethod
    def _unavailable(detail: str) -> KeystoneUnavailable:
        log.warning("keystone: %s", detail)
        return KeystoneUnavailable(UNAVAILABLE)

    @staticmethod
    def _refused(detail: str) -> ServiceAuthRefused:
        log.error("keystone: %s", detail)
        return ServiceAuthRefused(UNAVAILABLE)


def _timestamp(value: str) -> datetime.datetime:
    stamp = datetime.datetime.fromisoformat(value)
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=datetime.UTC)


def _token_info(data: Any) -> TokenInfo:
    """The identity in a validation's ``token`` object."""
    try:
        project = data.get("project") or {}
        return TokenInfo(
            user_id=str(data["user"]["id"]),
            project_id=str(project["id"]) if "id" in project else None,
            roles=tuple(str(role["name"]).lower() for role in data.get("roles") or []),
            expires_at=_timestamp(data["expires_at"]),
        )
    except (AttributeError, TypeError, KeyError, ValueError) as exc:
        log.warning(
            "keystone: a validation answer is not a token (%s: %s)", type(exc).__name__, exc
        )
        raise KeystoneUnavailable(UNAVAILABLE) from None
