"""Ending the ``imgworker`` process without the interpreter's teardown.

Once a command has finished, a normal exit still has the interpreter free every module and
object one by one: about 0.2 s after an import here (SQLAlchemy, aiohttp, pydantic and the
flow loaded), for memory the operating system takes back at once when the process ends.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import NoReturn


def exit_now(code: object) -> NoReturn:
    """End the process with ``code`` as :class:`SystemExit` would, minus the teardown.

    What a normal exit does that can matter is done first: the exit handlers (logging's
    flush among them), a non-integer code printed to stderr, stdout and stderr flushed.
    """
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:
        print(code, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        # Closed, or a reader that went away: nothing more can be written.
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)
