"""The policy engine: Glance's defaults, an operator's file, reloads, and broken files."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from worker.api.policies import list_rules
from worker.api.policies.engine import PolicyEngine, UnknownRule
from worker.api.policies.files import PolicyFileError, PolicySources


@dataclass(frozen=True)
class Caller:
    project_id: str | None
    user_id: str | None
    roles: tuple[str, ...]


MEMBER = Caller("p1", "u1", ("member", "reader"))
READER = Caller("p1", "u2", ("reader",))
ADMIN = Caller("admin", "u3", ("admin", "member", "reader"))
UPLOADER = Caller("p1", "u4", ("member", "reader", "image_uploader"))
OWN = {"project_id": "p1", "visibility": "private", "member_id": None, "owner": "p1"}
OTHERS = {**OWN, "project_id": "p2", "owner": "p2"}


def engine(tmp_path: Path, text: str | None = None, name: str = "policy.yaml") -> PolicyEngine:
    if text is None:
        return PolicyEngine(PolicySources(None))
    path = tmp_path / name
    path.write_text(text)
    return PolicyEngine(PolicySources(path))


def rewrite(path: Path, text: str) -> None:
    """Change the file so that its version visibly differs (mtime in ns, size)."""
    path.write_text(text)
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000))


def test_every_glance_rule_is_registered_once() -> None:
    names = [rule.name for rule in list_rules()]
    assert len(names) == len(set(names))
    for name in (
        "add_image", "get_image", "modify_image", "publicize_image", "download_image",
        "add_member", "modify_member", "deactivate", "reactivate", "copy_image",
        "tasks_api_access", "stores_info_detail", "cache_image", "cache_list", "cache_delete",
        "metadef_default", "metadef_admin", "add_metadef_namespace", "get_metadef_namespace",
        "delete_metadef_tags", "add_metadef_resource_type_association",
    ):  # fmt: skip
        assert name in names


def test_the_defaults_are_glances(tmp_path: Path) -> None:
    policy = engine(tmp_path)
    assert policy.allows("get_image", OWN, READER)
    assert not policy.allows("get_image", OTHERS, READER)
    assert policy.allows("get_image", {**OTHERS, "visibility": "public"}, READER)
    assert policy.allows("get_image", {**OTHERS, "visibility": "shared", "member_id": "p1"}, READER)
    assert not policy.allows("modify_image", OWN, READER)
    assert policy.allows("modify_image", OWN, MEMBER)
    assert not policy.allows("publicize_image", OWN, MEMBER)
    assert policy.allows("publicize_image", OWN, ADMIN)
    assert not policy.allows("add_image", {**OWN, "owner": "p2"}, MEMBER)
    # The guide's lock-down is the default: reads for readers, writes through metadef_admin.
    assert policy.allows(
        "get_metadef_namespace", {"project_id": "p2", "visibility": "public"}, READER
    )
    assert not policy.allows(
        "get_metadef_namespace", {"project_id": "p2", "visibility": "private"}, READER
    )
    assert not policy.allows("add_metadef_namespace", {"project_id": "p1"}, MEMBER)
    assert policy.allows("add_metadef_namespace", {"project_id": "p1"}, ADMIN)


def test_a_rule_nobody_registered_is_a_bug_not_a_refusal(tmp_path: Path) -> None:
    with pytest.raises(UnknownRule):
        engine(tmp_path).allows("no_such_rule", OWN, ADMIN)


def test_the_guides_open_up_file_lets_members_write_metadefs(tmp_path: Path) -> None:
    policy = engine(
        tmp_path, '"metadef_default": ""\n"add_metadef_namespace": "rule:metadef_default"\n'
    )
    assert policy.allows("add_metadef_namespace", {"project_id": "p1"}, MEMBER)
    assert not policy.allows("add_metadef_object", {"project_id": "p1"}, MEMBER)


def test_a_json_policy_file_is_read_too(tmp_path: Path) -> None:
    policy = engine(tmp_path, '{"add_image": "role:image_uploader"}', "policy.json")
    assert policy.allows("add_image", OWN, UPLOADER)
    assert not policy.allows("add_image", OWN, MEMBER)


def test_a_changed_file_applies_on_refresh_and_a_broken_one_keeps_the_old_rules(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy = engine(tmp_path, '"modify_image": "role:image_uploader"\n')
    path = tmp_path / "policy.yaml"
    assert not policy.allows("modify_image", OWN, MEMBER)
    rewrite(path, '"modify_image": "role:member"\n')
    assert policy.refresh()
    assert policy.allows("modify_image", OWN, MEMBER)
    rewrite(path, '"modify_image": "role:admin"\n"add_image": "role:admin or"\n')
    with caplog.at_level(logging.ERROR):
        assert not policy.refresh()
    assert policy.allows("modify_image", OWN, MEMBER)  # not half-applied
    assert f'{path}:2: rule "add_image": cannot understand' in caplog.text
    assert "previous rules stay in force" in caplog.text
    assert not policy.refresh()  # the same broken version is not read again
    rewrite(path, '"modify_image": "role:admin"\n')
    assert policy.refresh()
    assert not policy.allows("modify_image", OWN, MEMBER)


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('"add_image": "role:admin"\n"get_image": [\n', 3, "not valid YAML"),
        ('- "add_image"\n', 1, 'one "rule name": "check string" per line'),
        ('"add_image": "role:admin"\n"add_image": "role:member"\n', 2, "already defined on line 1"),
        ('"add_image": "rule:admins"\n', 1, 'refers to "rule:admins"'),
        ('"a": "rule:b"\n"b": "rule:a"\n', 1, "refers back to itself"),
        ('"add_image": 5\n', 1, "must be a string"),
        ('"add_image": "(role:admin"\n', 1, "cannot understand"),
    ],
)
def test_a_broken_file_is_refused_at_start_with_its_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    with pytest.raises(PolicyFileError) as refused:
        engine(tmp_path, text)
    assert refused.value.line == line
    assert words in str(refused.value)
    assert str(tmp_path / "policy.yaml") in str(refused.value)


def test_a_missing_policy_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="does not exist"):
        PolicyEngine(PolicySources(tmp_path / "nope.yaml"))


def test_a_policy_directory_applies_after_the_file_in_name_order(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text('"add_image": "role:admin"\n')
    extra = tmp_path / "policy.d"
    extra.mkdir()
    (extra / "10-uploaders.yaml").write_text('"add_image": "role:image_uploader"\n')
    (extra / "20-readers.yaml").write_text('"get_images": "role:reader"\n')
    (extra / ".hidden.yaml").write_text('"get_images": "!"\n')
    policy = PolicyEngine(PolicySources(tmp_path / "policy.yaml", (extra,)))
    assert policy.allows("add_image", OWN, UPLOADER)
    assert not policy.allows("add_image", OWN, ADMIN)
    assert policy.allows("get_images", OTHERS, READER)
    (extra / "30-broken.yaml").write_text('"get_images": "role:reader and"\n')
    assert not policy.refresh()
    assert policy.allows("get_images", OTHERS, READER)
    (extra / "30-broken.yaml").unlink()
    (extra / "10-uploaders.yaml").unlink()
    assert policy.refresh()
    assert policy.allows("add_image", OWN, ADMIN)


def test_remembered_answers_follow_the_target_and_the_caller(tmp_path: Path) -> None:
    policy = engine(tmp_path)
    for _ in range(3):
        assert policy.allows("get_image", OWN, READER)
        assert not policy.allows("get_image", OTHERS, READER)
        assert not policy.allows("modify_image", OWN, READER)
        assert policy.allows("modify_image", OWN, MEMBER)
