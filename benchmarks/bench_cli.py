"""Benchmark: how fast the everyday commands answer, against the 0.3 s bar.

Runs each of ``imgworker --version``, ``--help``, ``show ID``, ``show MISSING_ID``, ``list``
and ``task-show ID`` 7 times (as a user runs them: a new process each time, the default
configuration, the default SQLite database in the current directory, which holds one
imported image and its task) and prints the median wall time, the slowest run and the ratio
of the median to the bar (at most 1.0 is what we promise).

Usage: .venv/bin/python benchmarks/bench_cli.py [--runs 7] [--bar 0.3] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IMGWORKER = str(Path(sys.executable).with_name("imgworker"))
MISSING = "00000000-0000-0000-0000-000000000000"


def default_environment() -> dict[str, str]:
    """This process's environment without any imgworker configuration."""
    return {k: v for k, v in os.environ.items() if not k.startswith("IMGWORKER_")}


def prepare(workdir: Path, env: dict[str, str]) -> tuple[str, str]:
    """Import one small raw image with the default configuration; return its image and task."""
    disk = workdir / "tiny.raw"
    disk.write_bytes(b"\x5a" * 1024 * 1024)
    done = subprocess.run(
        [IMGWORKER, "import", "--file", str(disk), "--disk-format", "raw", "--json"],
        cwd=workdir,
        env={**env, "IMGWORKER_SAFETY__STAGING_MIN_FREE_BYTES": "0"},
        capture_output=True,
        text=True,
        check=True,
    )
    image_id = str(json.loads(done.stdout)["id"])
    with sqlite3.connect(workdir / "imgworker.db") as db:
        (task_id,) = db.execute("SELECT id FROM tasks WHERE image_id = ?", (image_id,)).fetchone()
    return image_id, str(task_id)


def time_command(args: list[str], workdir: Path, env: dict[str, str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` runs of ``imgworker ARGS``."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([IMGWORKER, *args], cwd=workdir, env=env, capture_output=True, check=False)
        seconds.append(time.perf_counter() - started)
    return seconds


def main() -> None:
    """Prepare a database, time every command, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--bar", type=float, default=0.3, help="seconds a command may take")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    options = parser.parse_args()
    env = default_environment()
    workdir = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        image_id, task_id = prepare(workdir, env)
        commands = {
            "--version": ["--version"],
            "--help": ["--help"],
            "show ID": ["show", image_id],
            "show MISSING_ID": ["show", MISSING],
            "list": ["list"],
            "task-show ID": ["task-show", task_id],
        }
        print(f"{'command':<18}{'median':>9}{'slowest':>9}{'ratio to bar':>14}")
        for label, args in commands.items():
            seconds = time_command(args, workdir, env, options.runs)
            median = statistics.median(seconds)
            print(f"{label:<18}{median:>8.3f}s{max(seconds):>8.3f}s{median / options.bar:>13.2f}x")
        print(f"({options.runs} runs each; bar {options.bar} s; load {os.getloadavg()[0]:.2f})")
    finally:
        if options.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
