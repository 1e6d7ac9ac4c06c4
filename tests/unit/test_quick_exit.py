"""The console script's exit without the interpreter's teardown loses nothing a normal exit
would have written: exit handlers run, output is flushed, the status is the command's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

IMGWORKER = Path(sys.executable).parent / "imgworker"


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )


def test_exit_handlers_run_and_buffered_output_is_flushed() -> None:
    done = _python(
        "import atexit, logging, sys\n"
        "from worker.cli.quick_exit import exit_now\n"
        "atexit.register(lambda: print('handler ran'))\n"
        "logging.basicConfig(stream=sys.stderr)\n"
        "logging.getLogger('t').warning('logged')\n"
        "sys.stdout.write('x' * 100000)\n"  # more than one buffer, none of it flushed yet
        "exit_now(3)\n"
    )
    assert done.returncode == 3
    assert done.stdout == "x" * 100000 + "handler ran\n"
    assert "logged" in done.stderr


def test_a_message_as_the_code_is_printed_and_exits_1() -> None:
    done = _python("from worker.cli.quick_exit import exit_now\nexit_now('gone wrong')\n")
    assert (done.returncode, done.stderr) == (1, "gone wrong\n")


def test_the_console_script_keeps_each_commands_status_and_output(tmp_path: Path) -> None:
    version = subprocess.run(
        [IMGWORKER, "--version"], capture_output=True, text=True, check=False, timeout=60
    )
    assert version.returncode == 0
    assert version.stdout.startswith("imgworker, version ")
    missing = subprocess.run(
        [IMGWORKER, "--config", str(tmp_path / "none.toml"), "list"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert missing.returncode == 2  # a configuration problem: CONFIGURATION_REFUSED
    assert "no such configuration file" in missing.stderr
