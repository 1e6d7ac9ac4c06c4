"""An import's progress as one line an operator reads: the phase, the store, bytes of total.

``store dcn0: 1.2 of 4.0 GiB (central written)``, ``converting: 310 of 512 MiB``,
``computing checksums: 3.1 of 4.0 GiB (central, dcn0 written)``, ``inspecting``. Each store is
counted on its own (never summed over stores), and the hashing that may outlast the writes
is named while it runs. Glance writes ``Copied N MiB`` here; neither python-glanceclient nor
openstacksdk reads it (openstacksdk compares a task's message only with one error text), so
the message says more instead.
"""

from __future__ import annotations

from flows.progress import PhaseProgress, ProgressSnapshot

MiB = 1024 * 1024
GiB = 1024 * MiB

#: How each byte phase is named in the message.
_PHASE_NAMES = {"stage": "staging", "convert": "converting", "checksums": "computing checksums"}
STORE_PREFIX = "store:"


def progress_message(snapshot: ProgressSnapshot) -> str:
    """The task message for ``snapshot`` (see the module docstring)."""
    running = [p for p in snapshot.phases if not p.ended]
    stores = [p for p in running if p.phase.startswith(STORE_PREFIX)]
    ended = [p for p in snapshot.phases if p.ended and p.phase.startswith(STORE_PREFIX)]
    suffix = _stores_ended(
        [p.phase.removeprefix(STORE_PREFIX) for p in ended if not p.failed],
        [p.phase.removeprefix(STORE_PREFIX) for p in ended if p.failed],
    )
    if stores:
        return "; ".join(_phase_line(p) for p in stores) + suffix
    others = [p for p in running if p.phase in _PHASE_NAMES]
    if others:
        return _phase_line(others[-1]) + suffix
    return snapshot.step + suffix


def _stores_ended(written: list[str], failed: list[str]) -> str:
    """`` (central written, dcn1 failed)``, or nothing when no store ended yet."""
    parts = [
        f"{', '.join(names)} {what}"
        for names, what in ((written, "written"), (failed, "failed"))
        if names
    ]
    return f" ({'; '.join(parts)})" if parts else ""


def _phase_line(phase: PhaseProgress) -> str:
    name = phase.phase
    label = (
        f"store {name.removeprefix(STORE_PREFIX)}"
        if name.startswith(STORE_PREFIX)
        else _PHASE_NAMES.get(name, name)
    )
    return f"{label}: {amount(phase.done, phase.total)}"


def amount(done: int, total: int | None) -> str:
    """``1.2 of 4.0 GiB``, ``12 of 64 MiB``, or ``1.2 GiB`` when the total is unknown."""
    scale = total if total is not None else done
    if scale >= GiB:
        shown = f"{done / GiB:.1f}"
        return f"{shown} of {total / GiB:.1f} GiB" if total is not None else f"{shown} GiB"
    shown = f"{done // MiB}"
    return f"{shown} of {total // MiB} MiB" if total is not None else f"{shown} MiB"
