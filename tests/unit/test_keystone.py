"""The Keystone client of ``imgworker api`` against a Keystone-shaped loopback server.

The real Keystone drives the same code in tests/integration/test_keystone.py; here each
answer Keystone can give is provoked on purpose: refusals, renewals, the cache's bounds.
"""

from __future__ import annotations

import datetime
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.support.api import api_client
from tests.support.http import serve_app
from tests.support.settings import make_settings
from worker.api.keystone import (
    InvalidToken,
    KeystoneClient,
    KeystoneUnavailable,
    ServiceAuthRefused,
    TokenCache,
    TokenInfo,
)
from worker.config.settings import KeystoneSettings

UTC = datetime.UTC
HOUR = datetime.timedelta(hours=1)


def _iso(when: datetime.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000000Z")


@dataclass
class FakeKeystone:
    """``POST`` and ``GET /v3/auth/tokens`` as Keystone answers them."""

    #: User tokens it knows: token -> (user, project or None, roles, lifetime).
    users: dict[str, tuple[str, str | None, list[str], datetime.timedelta]] = field(
        default_factory=dict
    )
    password: str = "service-secret"
    service_tokens: set[str] = field(default_factory=set)
    service_life: datetime.timedelta = HOUR
    #: Validations answered (cache hits never reach it).
    validations: int = 0
    logins: list[dict[str, Any]] = field(default_factory=list)
    #: Forced status of every validation (500, 403, ...), when set.
    validation_status: int | None = None
    #: Logins whose connection is dropped without an answer before it answers again.
    drops: int = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v3/auth/tokens", self.login)
        app.router.add_get("/v3/auth/tokens", self.validate)
        return app

    async def login(self, request: web.Request) -> web.Response:
        if self.drops:
            self.drops -= 1
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        auth = (await request.json())["auth"]
        self.logins.append(auth)
        identity = auth["identity"]
        if identity["methods"] == ["password"]:
            good = identity["password"]["user"]["password"] == self.password
        else:
            good = identity["application_credential"]["secret"] == self.password
        if not good:
            return web.json_response({"error": {"code": 401}}, status=401)
        token = f"service-{len(self.logins)}"
        self.service_tokens.add(token)
        now = datetime.datetime.now(UTC)
        catalog = [
            {
                "type": "image",
                "endpoints": [
                    {"interface": "public", "region_id": "RegionOne", "url": "http://img:9292"},
                    {"interface": "public", "region_id": "RegionTwo", "url": "http://far:9292"},
                ],
            }
        ]
        body = {
            "token": {
                "expires_at": _iso(now + self.service_life),
                "issued_at": _iso(now),
                "catalog": catalog,
            }
        }
        return web.json_response(body, status=201, headers={"X-Subject-Token": token})

    async def validate(self, request: web.Request) -> web.Response:
        if request.headers.get("X-Auth-Token") not in self.service_tokens:
            return web.json_response({"error": {"code": 401}}, status=401)
        if self.validation_status is not None:
            return web.json_response({"error": {}}, status=self.validation_status)
        self.validations += 1
        subject = request.headers.get("X-Subject-Token", "")
        if subject not in self.users:
            return web.json_response({"error": {"code": 404}}, status=404)
        user, project, roles, life = self.users[subject]
        token: dict[str, Any] = {
            "user": {"id": user},
            "roles": [{"id": name, "name": name} for name in roles],
            "expires_at": _iso(datetime.datetime.now(UTC) + life),
        }
        if project is not None:
            token["project"] = {"id": project}
        return web.json_response({"token": token})


@asynccontextmanager
async def serve(keystone: FakeKeystone) -> AsyncIterator[str]:
    async with serve_app(keystone.app()) as base:
        yield f"{base}/v3"


@asynccontextmanager
async def connected(
    keystone: FakeKeystone, clock: Clock | None = None, **settings: Any
) -> AsyncIterator[KeystoneClient]:
    """A client of ``keystone`` served on loopback, closed at the end."""
    async with serve(keystone) as url:
        client = KeystoneClient(_settings(url, **settings), clock=clock or time.monotonic)
        async with client:
            yield client


def _settings(url: str, **extra: Any) -> KeystoneSettings:
    values: dict[str, Any] = {
        "auth_url": url,
        "username": "imgworker",
        "password": "service-secret",
        **extra,
    }
    return KeystoneSettings.model_validate(values)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_a_valid_token_gives_its_identity_and_is_cached() -> None:
    keystone = FakeKeystone(users={"tok-a": ("u1", "p1", ["Member", "reader"], HOUR)})
    async with connected(keystone) as client:
        info = await client.validate("tok-a")
        assert (info.user_id, info.project_id, info.roles) == ("u1", "p1", ("member", "reader"))
        await client.validate("tok-a")
    assert keystone.validations == 1
    (login,) = keystone.logins
    assert login["scope"] == {"project": {"name": "service", "domain": {"name": "Default"}}}
    assert login["identity"]["password"]["user"]["name"] == "imgworker"


async def test_the_cache_keeps_a_token_no_longer_than_cache_seconds() -> None:
    clock = Clock()
    keystone = FakeKeystone(users={"tok-a": ("u1", "p1", ["member"], HOUR)})
    async with connected(keystone, clock=clock, cache_seconds=30) as client:
        await client.validate("tok-a")
        clock.now += 29
        await client.validate("tok-a")
        assert keystone.validations == 1
        clock.now += 2
        del keystone.users["tok-a"]  # revoked meanwhile
        with pytest.raises(InvalidToken):
            await client.validate("tok-a")
    assert keystone.validations == 2


def test_the_cache_never_outlives_the_token_and_stays_bounded() -> None:
    clock = Clock()
    now = datetime.datetime.now(UTC)
    cache = TokenCache(seconds=300, entries=2, clock=clock, wall=lambda: now)

    def info(seconds: float) -> TokenInfo:
        return TokenInfo("u", "p", (), now + datetime.timedelta(seconds=seconds))

    cache.put("soon", info(10))
    clock.now += 11
    assert cache.get("soon") is None
    cache.put("gone", info(-1))
    assert cache.get("gone") is None
    for name in ("a", "b", "c"):
        cache.put(name, info(100))
    assert [cache.get(name) is not None for name in ("a", "b", "c")] == [False, True, True]


async def test_unknown_and_malformed_tokens_are_invalid() -> None:
    keystone = FakeKeystone()
    async with connected(keystone) as client:
        with pytest.raises(InvalidToken):
            await client.validate("nobody-knows-me")
        for malformed in ("with space", "x" * 9000, "caf\u00e9"):
            with pytest.raises(InvalidToken):
                await client.validate(malformed)
    assert keystone.validations == 1


async def test_a_refused_service_token_is_renewed_once() -> None:
    keystone = FakeKeystone(users={"tok-a": ("u1", "p1", ["member"], HOUR)})
    async with connected(keystone, cache_seconds=0) as client:
        await client.validate("tok-a")
        keystone.service_tokens.clear()  # Keystone revoked the service's token
        await client.validate("tok-a")
    assert len(keystone.logins) == 2


async def test_a_service_token_is_renewed_before_it_expires() -> None:
    clock = Clock()
    keystone = FakeKeystone(
        users={"tok-a": ("u1", "p1", ["member"], HOUR)},
        service_life=datetime.timedelta(seconds=40),
    )
    async with connected(keystone, clock=clock, cache_seconds=0) as client:
        await client.validate("tok-a")
        clock.now += 25
        await client.validate("tok-a")
        assert len(keystone.logins) == 1
        clock.now += 10  # within the last quarter of its life
        await client.validate("tok-a")
    assert len(keystone.logins) == 2


async def test_refused_service_credentials_are_unavailability_not_the_callers_fault(
    caplog: pytest.LogCaptureFixture,
) -> None:
    keystone = FakeKeystone(users={"tok-a": ("u1", "p1", ["member"], HOUR)})
    async with connected(keystone, password="wrong") as client:
        with pytest.raises(ServiceAuthRefused) as caught:
            await client.validate("tok-a")
    assert caught.value.transient and "try again" in str(caught.value)
    assert "refused the service credentials of [keystone] (user 'imgworker'" in caplog.text
    assert "wrong" not in caplog.text


async def test_an_application_credential_logs_in_unscoped() -> None:
    keystone = FakeKeystone(users={"tok-a": ("u1", "p1", ["member"], HOUR)})
    async with serve(keystone) as url:
        settings = KeystoneSettings.model_validate(
            {
                "auth_url": url,
                "application_credential_id": "cred-1",
                "application_credential_secret": "service-secret",
            }
        )
        async with KeystoneClient(settings) as client:
            await client.validate("tok-a")
    (login,) = keystone.logins
    assert "scope" not in login
    assert login["identity"]["application_credential"]["id"] == "cred-1"


@pytest.mark.parametrize("status", [403, 500, 503])
async def test_keystone_failing_is_unavailable(status: int) -> None:
    keystone = FakeKeystone(
        users={"tok-a": ("u1", "p1", ["member"], HOUR)}, validation_status=status
    )
    async with connected(keystone) as client:
        with pytest.raises(KeystoneUnavailable):
            await client.validate("tok-a")


async def test_keystone_unreachable_is_unavailable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with KeystoneClient(_settings(f"http://127.0.0.1:{port}/v3")) as client:
        with pytest.raises(KeystoneUnavailable):
            await client.validate("tok-a")


@pytest.mark.parametrize(("drops", "works"), [(1, True), (2, False)])
async def test_a_dropped_connection_is_tried_once_more(drops: int, works: bool) -> None:
    """A login (a POST, which aiohttp never retries itself) whose connection breaks."""
    keystone = FakeKeystone(users={"tok-a": ("u1", "p1", ["member"], HOUR)}, drops=drops)
    async with connected(keystone) as client:
        if works:
            assert (await client.validate("tok-a")).user_id == "u1"
        else:
            with pytest.raises(KeystoneUnavailable):
                await client.validate("tok-a")


async def test_image_endpoints_of_the_region() -> None:
    async with connected(FakeKeystone(), region_name="RegionTwo") as client:
        assert await client.image_endpoints() == ["public http://far:9292"]


# -- the API with auth = "keystone" ----------------------------------------------------------


async def test_the_api_answers_401_with_the_challenge_and_503_when_keystone_fails(
    tmp_path: Path,
) -> None:
    keystone = FakeKeystone(
        users={
            "member": ("u1", "p1", ["member", "reader"], HOUR),
            "unscoped": ("u2", None, [], HOUR),
        }
    )
    async with serve(keystone) as url:
        settings = make_settings(
            tmp_path,
            api={"auth": "keystone"},
            keystone={
                "auth_url": url,
                "www_authenticate_uri": "https://keystone.example/v3",
                "username": "imgworker",
                "password": "service-secret",
            },
        )
        async with api_client(settings) as (client, _state):
            for headers in ({}, {"X-Auth-Token": "bogus"}):
                response = await client.get("/v2/images", headers=headers)
                assert response.status == 401
                challenge = response.headers["WWW-Authenticate"]
                assert challenge == 'Keystone uri="https://keystone.example/v3"'
                assert "requires authentication" in await response.text()
            assert (await client.get("/versions")).status == 200
            member = await client.get("/v2/images", headers={"X-Auth-Token": "member"})
            assert member.status == 200, await member.text()
            unscoped = await client.get("/v2/images", headers={"X-Auth-Token": "unscoped"})
            assert unscoped.status == 403
            assert "project-scoped" in await unscoped.text()
            keystone.validation_status = 500
            failing = await client.get("/v2/images", headers={"X-Auth-Token": "unscoped-too"})
            assert failing.status == 503
