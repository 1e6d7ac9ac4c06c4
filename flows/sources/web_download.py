"""web-download: stream a URL into the staging area, checked, capped and pinned.

Every hop (the URI and each redirect) passes :func:`flows.uri_filter.vet_uri` and the
connection goes only to the addresses that passed. The body streams into a hidden file next
to the destination in large writes made off the event loop (all-zero blocks left as holes),
counted against the image size cap as it arrives, hashed when an expected checksum was
given, and renamed into place only when complete; on any failure nothing is left behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from flows.errors import SafetyRefusal, SourceError, SourceUnavailable, StagingError
from flows.policy import SafetyPolicy
from flows.request import ExpectedChecksum
from flows.sparse import write_skipping_zeros
from flows.uri_filter import display, vet_uri

#: Bytes gathered before one write (and hash update) in a worker thread.
WRITE_SIZE = 4 * 1024 * 1024
#: Bytes asked of the socket per read.
READ_SIZE = 1024 * 1024
REDIRECTS = (301, 302, 303, 307, 308)

T = TypeVar("T")


class PinnedResolver(AbstractResolver):
    """Resolves only the hosts pinned to addresses a URI check approved."""

    def __init__(self) -> None:
        self._pins: dict[str, tuple[str, ...]] = {}

    def pin(self, host: str, addresses: tuple[str, ...]) -> None:
        """Let ``host`` resolve to ``addresses`` (and nothing else)."""
        self._pins[host] = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The pinned addresses of ``host``; any other host is an error."""
        addresses = self._pins.get(host.lower().rstrip("."))
        if not addresses:
            raise OSError(f"host {host!r} was not checked; refusing to resolve it")
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        """Nothing to release."""


async def download(
    url: str,
    dest: Path,
    policy: SafetyPolicy,
    expected: ExpectedChecksum | None,
    progress: Callable[[int], None],
    announced: Callable[[int | None], None] | None = None,
) -> None:
    """Download ``url`` to ``dest`` (see the module docstring for every check).

    ``progress`` gets each block's size as it is staged; ``announced``, when given, gets the
    size the source announces (``Content-Length``, or None) once, as the body starts.
    """
    partial = dest.with_name(f".{dest.name}.download")
    try:
        await _download(url, partial, policy, expected, progress, announced)
        await asyncio.to_thread(os.replace, partial, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


async def _download(
    url: str,
    partial: Path,
    policy: SafetyPolicy,
    expected: ExpectedChecksum | None,
    progress: Callable[[int], None],
    announced: Callable[[int | None], None] | None,
) -> None:
    resolver = PinnedResolver()
    timeout = aiohttp.ClientTimeout(
        total=policy.total_timeout,
        sock_connect=policy.connect_timeout,
        sock_read=policy.read_timeout,
    )
    connector = aiohttp.TCPConnector(resolver=resolver, use_dns_cache=False)
    async with aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False, trust_env=False
    ) as session:
        current, previous = url, None
        for _hop in range(policy.max_redirects + 1):
            target = await vet_uri(current, policy, redirect_from=previous)
            resolver.pin(target.host, target.addresses)
            shown = display(target.url)
            try:
                async with session.get(target.url, allow_redirects=False) as response:
                    if response.status in REDIRECTS:
                        previous, current = current, _redirect_target(response, target.url)
                        continue
                    _check_status(response, shown)
                    if announced is not None:
                        announced(response.content_length)
                    await _receive(response, partial, policy, expected, progress, shown)
                    return
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                raise SourceUnavailable(f"{shown}: {_describe(exc)}") from exc
        raise SourceError(f"{display(url)}: more than {policy.max_redirects} redirects; giving up")


def _redirect_target(response: aiohttp.ClientResponse, base: URL) -> str:
    location = response.headers.get("Location")
    if not location:
        raise SourceError(f"{display(base)} answered {response.status} without a Location")
    return str(base.join(URL(location)))


def _check_status(response: aiohttp.ClientResponse, shown: str) -> None:
    status = response.status
    if status == 200:
        return
    detail = f"{shown} answered {status} {response.reason or ''}".rstrip()
    if status >= 500 or status in (408, 429):
        raise SourceUnavailable(f"{detail}; will retry")
    raise SourceError(f"{detail}; the image cannot be downloaded")


async def _receive(
    response: aiohttp.ClientResponse,
    partial: Path,
    policy: SafetyPolicy,
    expected: ExpectedChecksum | None,
    progress: Callable[[int], None],
    shown: str,
) -> None:
    cap = policy.image_size_cap
    announced = response.content_length
    if announced is not None and announced > cap:
        raise SafetyRefusal(
            "image_size", f"{shown} announces {announced} bytes, above the image size cap {cap}"
        )
    hasher: Any = hashlib.new(expected.algo) if expected else None
    fd = await _staging_io(os.open, partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    writer = _Writer(fd, hasher, progress)
    try:
        total = 0
        buffer = bytearray()
        async for chunk in response.content.iter_chunked(READ_SIZE):
            total += len(chunk)
            if total > cap:
                raise SafetyRefusal(
                    "image_size", f"{shown} sent more than the image size cap of {cap} bytes"
                )
            buffer += chunk
            if len(buffer) >= WRITE_SIZE:
                await writer.write(buffer)
                buffer = bytearray()
        await writer.write(buffer)
        await writer.flush()
        if announced is not None and total != announced:
            raise SourceUnavailable(f"{shown}: got {total} of {announced} announced bytes")
        # A trailing hole has no bytes. No fsync: the staging area is scratch space that the
        # import empties within seconds, and a task resumed after a crash downloads again.
        await _staging_io(os.ftruncate, fd, total)
    finally:
        await writer.settle()
        await asyncio.to_thread(os.close, fd)
    if expected is not None and hasher.hexdigest() != expected.value:
        raise SourceError(
            f"{shown}: checksum mismatch: {expected.algo} of the downloaded data is "
            f"{hasher.hexdigest()}, "
            f"expected {expected.value}"
        )


async def _staging_io(call: Callable[..., T], *args: Any) -> T:
    """Run a blocking file operation on the staging area in a thread.

    A local file error (a full or read-only staging disk) is the staging area's problem, not
    the source's: it must not be reported, or retried, as "source unavailable".
    """
    try:
        return await asyncio.to_thread(call, *args)
    except OSError as exc:
        raise StagingError(f"the staging area cannot take the download: {exc}") from exc


class _Writer:
    """Writes one buffer in a worker thread while the next one is being received.

    At most one write is in flight, so writes (and hash updates) happen in order and memory
    stays at two buffers.
    """

    def __init__(self, fd: int, hasher: Any, progress: Callable[[int], None]) -> None:
        self._fd = fd
        self._hasher = hasher
        self._progress = progress
        self._pending: asyncio.Future[None] | None = None
        self._pending_bytes = 0

    async def write(self, data: bytearray) -> None:
        """Wait for the previous write, then start writing ``data`` (which is handed over)."""
        await self.flush()
        if data:
            self._pending = asyncio.ensure_future(
                asyncio.to_thread(_write, self._fd, data, self._hasher)
            )
            self._pending_bytes = len(data)

    async def flush(self) -> None:
        """Wait for the write in flight; raise its error."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            await pending
            self._progress(self._pending_bytes)

    async def settle(self) -> None:
        """Wait for a write still in flight without raising (before the file is closed)."""
        pending, self._pending = self._pending, None
        if pending is not None:
            await asyncio.wait([pending])
            if not pending.cancelled():
                pending.exception()  # retrieved: the error that ended the download wins


def _write(fd: int, data: bytes | bytearray, hasher: Any) -> None:
    try:
        write_skipping_zeros(fd, memoryview(data))
    except OSError as exc:
        raise StagingError(f"writing the download to the staging area failed: {exc}") from exc
    if hasher is not None:
        hasher.update(data)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out (no data within the read timeout, or the total timeout passed)"
    return str(exc) or type(exc).__name__
