"""Whose an RBD leftover is and how a takeover frees it (no Ceph needed)."""

from __future__ import annotations

from flows.stores.rbd_leftover import MARK_TASK, MARK_WRITER, Client, Leftover, Mark, WriterRelease

WRITER = Client(4109, "127.0.0.1:0/766270804")


def _leftover(
    mark: Mark | None,
    watchers: tuple[Client, ...] = (),
    snapshots: tuple[str, ...] = (),
    holds_data: bool = False,
) -> Leftover:
    return Leftover("images", "img", mark, snapshots, watchers, holds_data)


def test_a_mark_is_read_back_from_the_metadata_it_records() -> None:
    mark = Mark("task-1", WRITER)
    assert mark.metadata() == {MARK_TASK: "task-1", MARK_WRITER: "4109 127.0.0.1:0/766270804"}
    assert Mark.read([("other", "x"), *mark.metadata().items()]) == mark
    # No empty value is ever recorded (the binding pairs keys and values wrongly after one).
    assert Mark("", WRITER).metadata() == {MARK_WRITER: "4109 127.0.0.1:0/766270804"}
    assert Mark.read(Mark("", WRITER).metadata().items()) == Mark("", WRITER)


def test_no_mark_when_the_writer_is_missing_or_unreadable() -> None:
    assert Mark.read([]) is None
    assert Mark.read([(MARK_TASK, "task-1")]) is None
    assert Mark.read([(MARK_WRITER, "client.4109")]) is None
    assert Mark.read([(MARK_WRITER, "4109")]) is None


def test_imgworker_owns_what_it_marked_or_what_holds_nothing() -> None:
    assert _leftover(Mark("task-1", WRITER), snapshots=("snap",), holds_data=True).owned()
    assert _leftover(None).owned()  # created, never marked nor written: nothing to lose
    assert not _leftover(None, holds_data=True).owned()
    assert not _leftover(None, snapshots=("snap",)).owned()
    refusal = _leftover(None, holds_data=True).refusal()
    assert "images/img" in refusal and "not written by imgworker" in refusal
    assert "rbd snap purge, rbd rm" in refusal


def test_only_the_marked_writer_counts_as_dead() -> None:
    other = Client(5000, "127.0.0.1:0/1")
    leftover = _leftover(Mark("task-1", WRITER), watchers=(other, Client(4109, "10.0.0.1:0/9")))
    # Matched by global id; the address blocklisted is the one the OSD reports.
    assert leftover.dead_writers() == [Client(4109, "10.0.0.1:0/9")]
    assert _leftover(None, watchers=(other,)).dead_writers() == []
    assert leftover.whose() == f"task task-1, written by {WRITER}"


def test_the_release_follows_librbds_own_options() -> None:
    conf = {
        "rbd_blocklist_on_break_lock": "false",
        "rbd_blocklist_expire_seconds": "600",
        "osd_client_watch_timeout": "45",
    }
    release = WriterRelease.from_conf(conf.get)
    assert release == WriterRelease(blocklist=False, expire_seconds=600, watch_timeout=45.0)
    assert release.wait_limit() == 50.0
    assert "waits up to the 45 s watch timeout" in release.describe()
    default = WriterRelease.from_conf(lambda _name: None)
    assert default == WriterRelease(blocklist=True, expire_seconds=0, watch_timeout=30.0)
    assert "blocklisted at once" in default.describe() and "profile rbd" in default.describe()
