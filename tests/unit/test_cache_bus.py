"""Cache commands on the wire: what parses, and what is dropped with the reason."""

from __future__ import annotations

import json

import pytest

from worker.cache.bus import Action, CacheCommand, ClearTarget

IMAGE = "0b6d3c54-5f0e-4b8a-9f43-2f7c1e8a9d10"


@pytest.mark.parametrize(
    "command",
    [
        CacheCommand(Action.QUEUE, IMAGE, sender="a"),
        CacheCommand(Action.DELETE, IMAGE, ClearTarget.CACHE),
        CacheCommand(Action.IMAGE_DELETED, IMAGE),
        CacheCommand(Action.CLEAR, target=ClearTarget.BOTH),
        CacheCommand(Action.PRUNE),
        CacheCommand(Action.CLEAN),
    ],
)
def test_commands_travel_unchanged(command: CacheCommand) -> None:
    assert CacheCommand.parse(command.to_json()) == command


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "unreadable"),
        (json.dumps({"version": 2, "action": "queue"}).encode(), "version 1"),
        (json.dumps({"version": 1, "action": "explode"}).encode(), "unreadable"),
        (json.dumps({"version": 1, "action": "queue"}).encode(), "exactly one image"),
        (json.dumps({"version": 1, "action": "queue", "image_id": "x"}).encode(), "unreadable"),
        (json.dumps({"version": 1, "action": "clear"}).encode(), "names a target"),
        (
            json.dumps({"version": 1, "action": "prune", "target": "cache"}).encode(),
            "names a target",
        ),
    ],
)
def test_bad_commands_say_why(body: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        CacheCommand.parse(body)
