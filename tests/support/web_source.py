"""A web server in a thread (for fixtures wider than one test's event loop).

``/NAME`` serves a file of the directory; ``/slow/NAME`` serves it at a limited rate, so a
test can watch an import while it runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class _Handler(SimpleHTTPRequestHandler):
    rate: float = 0.0

    def do_GET(self) -> None:
        if not self.path.startswith("/slow/"):
            super().do_GET()
            return
        path = Path(self.directory) / self.path.removeprefix("/slow/")
        size = path.stat().st_size
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        step = max(int(self.rate / 10), 64 * 1024)
        with path.open("rb") as source:
            while chunk := source.read(step):
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up (a cancelled import): nothing to report
                time.sleep(len(chunk) / self.rate)

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def web_source(directory: Path, slow_bytes_per_second: float = 8 * 1024 * 1024) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) in a thread; yield the base URL."""
    handler = type("Handler", (_Handler,), {"rate": slow_bytes_per_second})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(directory)))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="web-source", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
