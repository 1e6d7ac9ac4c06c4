"""``imgworker import`` as a person sees it: bars on a terminal, plain lines elsewhere."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest

from tests.support.images import MiB, make_sample_qcow2

IMGWORKER = str(Path(sys.executable).with_name("imgworker"))
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
STEP_LINE = r"  store:central +ok +\d+\.\d s"


@pytest.fixture
def qcow2(tmp_path: Path) -> Path:
    """96 MiB virtual, 32 MiB of data: many 1 MiB chunks for every bar."""
    return make_sample_qcow2(tmp_path / "disk.qcow2", 96 * MiB, 32 * MiB)


def import_command(tmp_path: Path, image: Path) -> tuple[list[str], dict[str, str]]:
    """The command line and environment of an import into two file stores under tmp_path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMGWORKER_")}
    env.update(
        {
            "IMGWORKER_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'records.db'}",
            "IMGWORKER_STAGING__DIR": str(tmp_path / "staging"),
            "IMGWORKER_SAFETY__STAGING_MIN_FREE_BYTES": "0",
            "IMGWORKER_IMPORT__CHUNK_SIZE": str(MiB),
            "IMGWORKER_STORES__DEFAULT": "central",
            "TERM": "xterm-256color",
        }
    )
    for store in ("central", "dcn0"):
        env[f"IMGWORKER_STORES__{store.upper()}__TYPE"] = "file"
        env[f"IMGWORKER_STORES__{store.upper()}__PATH"] = str(tmp_path / store)
    argv = [IMGWORKER, "import", "--file", str(image), "--disk-format", "qcow2"]
    return [*argv, "--stores", "central,dcn0"], env


def run_in_terminal(argv: list[str], env: dict[str, str], timeout: float = 120) -> tuple[int, str]:
    """Run ``argv`` with a 120x30 pseudo-terminal as its terminal; return (status, transcript)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    process = subprocess.Popen(argv, env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    transcript = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed its side
                break
            if not chunk:
                break
            transcript += chunk
    finally:
        os.close(master)
        status = process.wait(timeout=10)
    return status, transcript.decode(errors="replace")


def test_a_terminal_shows_bars_with_percent_size_rate_and_time_left(
    tmp_path: Path, qcow2: Path
) -> None:
    argv, env = import_command(tmp_path, qcow2)
    status, transcript = run_in_terminal(argv, env)
    assert status == 0, transcript
    screen = ANSI.sub("", transcript)
    for phase in ("stage", "convert", "checksums", "store:central", "store:dcn0"):
        # qemu-img may report a small conversion in one go, and the first file store only
        # publishes what the conversion wrote into it: no rate to show is fine there.
        rate, eta = (r"[\d.]+ [KMG]?i?B", r"\d+:\d\d:\d\d")
        if phase in ("convert", "store:central"):
            rate, eta = (rf"(?:{rate}|\?(?: B)?)", rf"(?:{eta}|-:--:--)")
        bar = re.search(
            rf"  {re.escape(phase)} +\S+ +\d+% +[\d.]+/[\d.]+ MiB +{rate}/s +eta {eta}", screen
        )
        assert bar is not None, f"no full bar for {phase} in:\n{screen}"
    assert "100%" in screen and "96.0/96.0 MiB" in screen
    # Redrawn bars and printed lines share the transcript: the step line is in it whole.
    assert re.search(STEP_LINE, screen), screen


def test_without_a_terminal_only_plain_step_lines_are_written(tmp_path: Path, qcow2: Path) -> None:
    argv, env = import_command(tmp_path, qcow2)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr and "\r" not in done.stderr
    assert re.search(f"^{STEP_LINE}$", done.stderr, re.MULTILINE), done.stderr
    assert [line.split()[0] for line in done.stderr.splitlines()] == [
        "lock",
        "stage",
        "verify_signature",
        "decompress",
        "inspect",
        "inject_metadata",
        "convert",
        "store:central",
        "store:dcn0",
        "complete",
    ]
