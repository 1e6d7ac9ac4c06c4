"""web-download: stream a URL into the staging area, checked, capped and pinned.

Every hop (the URI and each redirect) passes :func:`flows.uri_filter.vet_uri_blocking` and
the connection goes only to the addresses that passed. The body streams into a hidden file
next to the destination in large writes (all-zero blocks left as holes), counted against the
image size cap as it arrives, hashed when an expected checksum was given, and renamed into
place only when complete; on any failure nothing is left behind.

The transfer is blocking code (the standard library's ``http.client`` over a socket this
module connects) run in one worker thread: it holds the GIL only between large reads, so it
runs at full speed beside whatever else the process is doing — the event loop, or a command
still loading its modules (:mod:`flows.sources.prefetch`). Cancelling :func:`download` cuts the
socket, so a read blocked on a silent source ends at once, not after the read timeout.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from yarl import URL

from flows.errors import SafetyRefusal, SourceError, SourceUnavailable
from flows.local_io import LocalPlace, failing_at
from flows.policy import SafetyPolicy
from flows.request import ExpectedChecksum
from flows.sparse import write_skipping_zeros
from flows.threads import Stopped, check_stop, run_stoppable
from flows.uri_filter import VettedTarget, display, vet_uri_blocking

#: Bytes read from the socket before one write (and hash update). Small enough to stay in
#: a core's L2 cache between the read and the write: with 4 MiB the same 420 MB download
#: took 2-3x the CPU here (0.54-0.85 s against 0.28 s for 1 MiB; 512 KiB: the same).
WRITE_SIZE = 1024 * 1024
REDIRECTS = (301, 302, 303, 307, 308)
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: What may not appear in a request line or a header value (yarl percent-encodes the rest).
_UNSAFE = re.compile(r"[^\x21-\x7e]")


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
    size the source announces (``Content-Length``, or None) once, as the body starts. Both
    are called from the worker thread.
    """
    line = Line()
    await run_stoppable(
        lambda stop: download_blocking(
            url, dest, policy, expected, progress, announced, stop=stop, line=line
        ),
        interrupt=line.cut,
        own_thread="web-download",
    )


def download_blocking(
    url: str,
    dest: Path,
    policy: SafetyPolicy,
    expected: ExpectedChecksum | None,
    progress: Callable[[int], None],
    announced: Callable[[int | None], None] | None = None,
    *,
    stop: threading.Event | None = None,
    line: Line | None = None,
) -> None:
    """:func:`download` in the calling thread; ``stop`` and ``line.cut()`` end it early."""
    partial = dest.with_name(f".{dest.name}.download")
    try:
        _follow(url, partial, policy, expected, progress, announced, stop, line or Line())
        _staging_io(partial, os.replace, partial, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise


class Line:
    """The socket a blocking download is using, so that another thread can cut it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._cut = False

    def cut(self) -> None:
        """Stop the download: shut its socket down (a blocked read returns) and refuse more."""
        with self._lock:
            self._cut = True
            if self._socket is not None:
                with contextlib.suppress(OSError):
                    # The plain socket's shutdown, also for a TLS socket: it wakes the reader
                    # without touching the TLS state that the reading thread owns.
                    socket.socket.shutdown(self._socket, socket.SHUT_RDWR)

    def attach(self, sock: socket.socket) -> None:
        """Make ``sock`` the one :meth:`cut` shuts down (closed at once if already cut)."""
        with self._lock:
            if self._cut:
                sock.close()
                raise Stopped("stopped: the task was cancelled")
            self._socket = sock

    def detach(self) -> None:
        """Forget the socket (its owner closes it)."""
        with self._lock:
            self._socket = None


def _follow(
    url: str,
    partial: Path,
    policy: SafetyPolicy,
    expected: ExpectedChecksum | None,
    progress: Callable[[int], None],
    announced: Callable[[int | None], None] | None,
    stop: threading.Event | None,
    line: Line,
) -> None:
    """Fetch ``url`` into ``partial``, following redirects (each one vetted)."""
    deadline = time.monotonic() + policy.total_timeout
    current, previous = url, None
    for _hop in range(policy.max_redirects + 1):
        check_stop(stop)
        target = vet_uri_blocking(current, policy, redirect_from=previous)
        shown = display(target.url)
        with contextlib.ExitStack() as held:
            try:
                sock = held.enter_context(_connected(target, policy, deadline, line))
                response = _request(sock, target)
            except (OSError, http.client.HTTPException) as exc:
                check_stop(stop)
                raise SourceUnavailable(f"{shown}: {_describe(exc)}") from exc
            held.callback(response.close)
            if response.status in REDIRECTS:
                previous, current = current, _redirect_target(response, target.url)
                continue
            _check_status(response, shown)
            length = None if response.chunked else response.length
            if announced is not None:
                announced(length)
            body = _Body(response, sock, length, policy, deadline, stop, shown)
            _receive(body, partial, policy, expected, progress)
            return
    raise SourceError(f"{display(url)}: more than {policy.max_redirects} redirects; giving up")


@contextlib.contextmanager
def _connected(
    target: VettedTarget, policy: SafetyPolicy, deadline: float, line: Line
) -> Iterator[socket.socket]:
    """A socket connected to the first vetted address that answers (TLS for https)."""
    error: OSError | None = None
    for address in target.addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        line.attach(sock)
        try:
            sock.settimeout(_remaining(policy.connect_timeout, deadline))
            try:
                sock.connect((address, target.port))
            except OSError as exc:
                error = exc
                continue
            sock.settimeout(_remaining(policy.read_timeout, deadline))
            if target.url.scheme.lower() == "https":
                # wrap_socket takes the descriptor over from ``sock``: the line follows it.
                sock = _tls_context().wrap_socket(sock, server_hostname=target.host)
                line.attach(sock)
            yield sock
            return
        finally:
            line.detach()
            sock.close()
    raise error or OSError(f"{target.host!r} has no address to connect to")


def _request(sock: socket.socket, target: VettedTarget) -> http.client.HTTPResponse:
    """Send the GET on ``sock`` and read the status line and headers."""
    path = target.url.raw_path_qs or "/"
    host = _host_header(target)
    for part in (path, host):
        if _UNSAFE.search(part):
            raise SourceError(f"{display(target.url)}: the URI holds characters HTTP forbids")
    request = (
        f"GET {path} HTTP/1.1\r\n"
        f"Host: {host}\r\n"
        # The stored bytes must be the image's own: no content coding.
        "Accept-Encoding: identity\r\n"
        "User-Agent: imgworker\r\n"
        "Connection: close\r\n\r\n"
    )
    sock.sendall(request.encode("ascii"))
    response = http.client.HTTPResponse(sock, method="GET")
    response.begin()
    return response


def _host_header(target: VettedTarget) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    if target.port == _DEFAULT_PORTS.get(target.url.scheme.lower()):
        return host
    return f"{host}:{target.port}"


_tls: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """The system's trusted certificates, hostname checked (made once, on first use)."""
    global _tls
    if _tls is None:
        _tls = ssl.create_default_context()
    return _tls


def _redirect_target(response: http.client.HTTPResponse, base: URL) -> str:
    location = response.getheader("Location")
    if not location:
        raise SourceError(f"{display(base)} answered {response.status} without a Location")
    return str(base.join(URL(location)))


def _check_status(response: http.client.HTTPResponse, shown: str) -> None:
    status = response.status
    if status == 200:
        return
    detail = f"{shown} answered {status} {response.reason or ''}".rstrip()
    if status >= 500 or status in (408, 429):
        raise SourceUnavailable(f"{detail}; will retry")
    raise SourceError(f"{detail}; the image cannot be downloaded")


class _Body:
    """The response body being read: ``readinto`` with the timeouts and stop applied."""

    def __init__(
        self,
        response: http.client.HTTPResponse,
        sock: socket.socket,
        announced: int | None,
        policy: SafetyPolicy,
        deadline: float,
        stop: threading.Event | None,
        shown: str,
    ) -> None:
        self.announced = announced
        self.shown = shown
        self._response = response
        self._sock = sock
        self._read_timeout = policy.read_timeout
        self._deadline = deadline
        self._stop = stop

    def readinto(self, buffer: memoryview) -> int:
        """Fill ``buffer`` as far as the body goes; 0 at its end."""
        check_stop(self._stop)
        try:
            self._sock.settimeout(_remaining(self._read_timeout, self._deadline))
            count = self._response.readinto(buffer)
        except (OSError, http.client.HTTPException) as exc:
            check_stop(self._stop)
            raise SourceUnavailable(f"{self.shown}: {_describe(exc)}") from exc
        if not count:
            check_stop(self._stop)  # a cut socket reads as the end of the body
        return count


def _receive(
    body: _Body,
    partial: Path,
    policy: SafetyPolicy,
    expected: ExpectedChecksum | None,
    progress: Callable[[int], None],
) -> None:
    cap, shown, announced = policy.image_size_cap, body.shown, body.announced
    if announced is not None and announced > cap:
        raise SafetyRefusal(
            "image_size", f"{shown} announces {announced} bytes, above the image size cap {cap}"
        )
    hasher: Any = hashlib.new(expected.algo) if expected else None
    fd = _staging_io(partial, os.open, partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    try:
        buffer = memoryview(bytearray(WRITE_SIZE))
        total = 0
        while count := body.readinto(buffer):
            total += count
            if total > cap:
                raise SafetyRefusal(
                    "image_size", f"{shown} sent more than the image size cap of {cap} bytes"
                )
            _write(partial, fd, buffer[:count], hasher)
            progress(count)
        if announced is not None and total != announced:
            raise SourceUnavailable(f"{shown}: got {total} of {announced} announced bytes")
        # A trailing hole has no bytes. No fsync: the staging area is scratch space that the
        # import empties within seconds, and a task resumed after a crash downloads again.
        _staging_io(partial, os.ftruncate, fd, total)
    finally:
        os.close(fd)
    if expected is not None and hasher.hexdigest() != expected.value:
        raise SourceError(
            f"{shown}: checksum mismatch: {expected.algo} of the downloaded data is "
            f"{hasher.hexdigest()}, "
            f"expected {expected.value}"
        )


def _remaining(limit: float, deadline: float) -> float:
    """``limit`` seconds, or less when the total timeout ends sooner (then a timeout)."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the total timeout passed")
    return min(limit, left)


def _staging_io(partial: Path, call: Callable[..., Any], *args: Any) -> Any:
    """A file operation on ``partial``, in the staging area.

    A local file error (a full or read-only staging disk) is the staging area's problem, not
    the source's: it must not be reported, or retried, as "source unavailable".
    """
    with failing_at(LocalPlace(partial.parent), "take the download"):
        return call(*args)


def _write(partial: Path, fd: int, data: memoryview, hasher: Any) -> None:
    _staging_io(partial, write_skipping_zeros, fd, data)
    if hasher is not None:
        hasher.update(data)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out (no data within the read timeout, or the total timeout passed)"
    return str(exc) or type(exc).__name__
