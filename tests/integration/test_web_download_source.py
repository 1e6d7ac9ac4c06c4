"""web-download against a real aiohttp server on loopback: bytes, checks, caps, redirects."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from yarl import URL

from flows.errors import SafetyRefusal, SourceError, SourceUnavailable
from flows.policy import SafetyPolicy
from flows.request import ExpectedChecksum
from flows.sources import web_download
from flows.sources.web_download import download
from tests.support.http import serve_app, stalled_body
from tests.support.tls import make_localhost_certificate, server_context

MiB = 1024 * 1024
BODY = os.urandom(3 * MiB + 123)
#: Loopback is trusted explicitly (the default policy refuses it); redirects are still checked.
POLICY = SafetyPolicy(allowed_ports=(), trusted_hosts=("127.0.0.1",), read_timeout=2.0)


@pytest.fixture
async def server() -> AsyncIterator[str]:
    async def image(request: web.Request) -> web.StreamResponse:
        return web.Response(body=BODY)

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(8):
            await response.write(bytes(MiB))
        await response.write_eof()
        return response

    async def redirect(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(request.query["to"])

    async def loop(request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound("/loop")

    async def status(request: web.Request) -> web.StreamResponse:
        return web.Response(status=int(request.match_info["code"]), text="no")

    async def headers(request: web.Request) -> web.StreamResponse:
        return web.json_response(dict(request.headers))

    async def truncated(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(10 * MiB)})
        await response.prepare(request)
        await response.write(b"x" * 1024)
        assert request.transport is not None
        request.transport.close()
        return response

    app = web.Application()
    app.router.add_get("/image", image)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/stall", stalled_body)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/loop", loop)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/headers", headers)
    app.router.add_get("/truncated", truncated)
    async with serve_app(app) as base:
        yield base


def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


async def test_download_is_byte_exact_and_counted(server: str, tmp_path: Path) -> None:
    counted: list[int] = []
    dest = tmp_path / "img"
    sha = ExpectedChecksum("sha256", hashlib.sha256(BODY).hexdigest())
    await download(f"{server}/image", dest, POLICY, sha, counted.append)
    assert dest.read_bytes() == BODY
    assert sum(counted) == len(BODY)
    assert _leftovers(tmp_path) == ["img"]


async def test_checksum_mismatch_is_refused_and_nothing_left(server: str, tmp_path: Path) -> None:
    wrong = ExpectedChecksum("md5", "0" * 32)
    with pytest.raises(
        SourceError,
        match=r"checksum mismatch: md5 of the downloaded data is [0-9a-f]{32}, expected 0+",
    ):
        await download(f"{server}/image", tmp_path / "img", POLICY, wrong, lambda n: None)
    assert _leftovers(tmp_path) == []


async def test_client_errors_are_terminal_server_errors_transient(
    server: str, tmp_path: Path
) -> None:
    with pytest.raises(SourceError, match="answered 404"):
        await download(f"{server}/status/404", tmp_path / "a", POLICY, None, lambda n: None)
    with pytest.raises(SourceUnavailable, match="answered 503"):
        await download(f"{server}/status/503", tmp_path / "b", POLICY, None, lambda n: None)
    assert _leftovers(tmp_path) == []


async def test_size_cap_enforced_while_streaming(server: str, tmp_path: Path) -> None:
    policy = dataclasses.replace(POLICY, image_size_cap=3 * MiB)
    with pytest.raises(SafetyRefusal, match="more than the image size cap") as refused:
        await download(f"{server}/chunked", tmp_path / "img", policy, None, lambda n: None)
    assert refused.value.check == "image_size"
    with pytest.raises(SafetyRefusal, match="announces"):
        await download(f"{server}/image", tmp_path / "img", policy, None, lambda n: None)
    assert _leftovers(tmp_path) == []


async def test_redirect_is_followed(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "img"
    await download(f"{server}/redirect?to=/image", dest, POLICY, None, lambda n: None)
    assert dest.read_bytes() == BODY


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest",
        "http://[::1]:1/x",
        "http://2886729729/x",
    ],
)
async def test_redirect_to_internal_address_is_refused(
    server: str, tmp_path: Path, target: str
) -> None:
    with pytest.raises(SafetyRefusal) as refused:
        await download(f"{server}/redirect?to={target}", tmp_path / "i", POLICY, None, lambda n: 0)
    assert refused.value.check == "redirect"
    assert "redirect from" in refused.value.message
    assert _leftovers(tmp_path) == []


async def test_too_many_redirects(server: str, tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="more than 5 redirects"):
        await download(f"{server}/loop", tmp_path / "img", POLICY, None, lambda n: None)


async def test_stalled_source_times_out(server: str, tmp_path: Path) -> None:
    policy = dataclasses.replace(POLICY, read_timeout=0.5)
    with pytest.raises(SourceUnavailable, match="timed out"):
        await download(f"{server}/stall", tmp_path / "img", policy, None, lambda n: None)
    assert _leftovers(tmp_path) == []


async def test_refused_connection_is_transient(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceUnavailable):
        await download(f"http://127.0.0.1:{port}/x", tmp_path / "img", POLICY, None, lambda n: 0)


async def test_default_policy_refuses_the_loopback_server(server: str, tmp_path: Path) -> None:
    with pytest.raises(SafetyRefusal) as refused:
        await download(f"{server}/image", tmp_path / "img", SafetyPolicy(), None, lambda n: None)
    assert refused.value.check == "uri_port"


async def test_the_request_asks_for_the_bytes_as_they_are(server: str, tmp_path: Path) -> None:
    dest = tmp_path / "headers.json"
    await download(f"{server}/headers", dest, POLICY, None, lambda n: None)
    sent = json.loads(dest.read_bytes())
    assert sent["Host"] == server.removeprefix("http://")
    # No content coding: what is stored is what the source holds.
    assert sent["Accept-Encoding"] == "identity"


async def test_a_body_cut_short_is_transient(server: str, tmp_path: Path) -> None:
    with pytest.raises(SourceUnavailable, match=f"got 1024 of {10 * MiB} announced bytes"):
        await download(f"{server}/truncated", tmp_path / "img", POLICY, None, lambda n: None)
    assert _leftovers(tmp_path) == []


async def test_cancelling_cuts_a_silent_source_at_once(server: str, tmp_path: Path) -> None:
    # The read timeout is far longer than the test's patience: only cutting the socket ends
    # the blocked read in time.
    policy = dataclasses.replace(POLICY, read_timeout=300.0)
    running = asyncio.create_task(
        download(f"{server}/stall", tmp_path / "img", policy, None, lambda n: None)
    )
    async with asyncio.timeout(30):
        while not (tmp_path / ".img.download").exists():  # the body has begun
            await asyncio.sleep(0.05)
    running.cancel()
    done, _ = await asyncio.wait([running], timeout=30)
    assert done == {running} and running.cancelled()
    assert _leftovers(tmp_path) == []


async def test_https_is_verified_against_the_host_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = make_localhost_certificate(tmp_path)
    app = web.Application()
    app.router.add_get("/image", _body_response)
    policy = dataclasses.replace(POLICY, trusted_hosts=("localhost",))
    dest = tmp_path / "img"
    async with serve_app(app, server_context(cert, key)) as base:
        port = URL(base).port
        url = f"https://localhost:{port}/image"
        # Not signed by anyone this machine trusts: refused, nothing kept.
        with pytest.raises(SourceUnavailable, match="certificate verify failed"):
            await download(url, dest, policy, None, lambda n: None)
        assert not dest.exists()
        # Trusted (OpenSSL's SSL_CERT_FILE): the name in the URI is the one checked, while
        # the connection goes to the vetted address.
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        monkeypatch.setattr(web_download, "_tls", None)
        await download(url, dest, policy, None, lambda n: None)
        assert dest.read_bytes() == BODY


async def _body_response(request: web.Request) -> web.StreamResponse:
    return web.Response(body=BODY)
