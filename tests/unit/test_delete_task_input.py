"""A delete task's input: written by the catalogue, read back by the worker that removes data."""

from __future__ import annotations

import pytest

from worker.db.deletions import DeleteTaskInput, DoomedLocation


def test_the_input_reads_back_as_it_was_written() -> None:
    written = DeleteTaskInput(
        "img", (DoomedLocation("file:///s/a/img", "a"), DoomedLocation("rbd://f/p/img/snap", "b"))
    )
    assert written.to_dict() == {
        "image_id": "img",
        "locations": [
            {"url": "file:///s/a/img", "store": "a"},
            {"url": "rbd://f/p/img/snap", "store": "b"},
        ],
        "staging": False,
    }
    assert DeleteTaskInput.from_dict(written.to_dict()) == written


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (None, "KeyError"),
        ({"image_id": "img", "locations": []}, "staging"),
        ({"image_id": "img", "locations": "file:///x", "staging": False}, "is not a list"),
        ({"image_id": "img", "locations": [{"url": 5, "store": "a"}], "staging": True}, "5"),
        ({"image_id": "img", "locations": [], "staging": "yes"}, "'yes' is not a bool"),
    ],
)
def test_an_input_that_is_not_a_delete_task_s_is_named(data: object, words: str) -> None:
    with pytest.raises(ValueError, match="not a delete task's input") as refused:
        DeleteTaskInput.from_dict(data)  # type: ignore[arg-type]
    assert words in str(refused.value)
