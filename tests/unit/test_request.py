"""Parsing Glance's import request body and resolving target stores."""

from __future__ import annotations

from typing import Any

import pytest

from flows.errors import ImageStateConflict, InvalidRequest
from flows.records import ImageRecord, Location
from flows.request import ImportRequest, parse_import_request
from flows.targets import resolve_targets

CONFIGURED = ["central", "dcn0", "dcn1"]


def test_round_trip_and_defaults() -> None:
    body = {
        "method": {
            "name": "web-download",
            "uri": "https://x/y.qcow2",
            "checksum": {"algo": "sha256", "value": "ABC"},
        },
        "stores": ["central", "dcn0"],
    }
    request = parse_import_request(body)
    assert request.all_stores_must_succeed is True  # the API's default
    assert request.checksum is not None and request.checksum.value == "abc"
    assert parse_import_request(request.to_body()) == request


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "import_req.method must be an object"),
        ({"method": {"name": "glance-download"}}, "is not an import method"),
        ({"method": {"name": "web-download"}}, "needs import_req.method.uri"),
        ({"method": {"name": "copy-image", "uri": "http://x"}}, "takes no import_req.method.uri"),
        ({"method": {"name": "copy-image"}, "stores": "central"}, "must be a list"),
        ({"method": {"name": "copy-image"}, "stores": ["a", "a"]}, "names a store twice"),
        ({"method": {"name": "copy-image"}, "stores": ["a"], "all_stores": True}, "not both"),
        ({"method": {"name": "copy-image"}, "all_stores_must_succeed": "yes"}, "true or false"),
        (
            {
                "method": {
                    "name": "web-download",
                    "uri": "http://x",
                    "checksum": {"algo": "crc32", "value": "1"},
                }
            },
            "not supported",
        ),
    ],
)
def test_bad_bodies_are_named(body: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        parse_import_request(body)


def image(*stores: str, status: str = "active") -> ImageRecord:
    return ImageRecord(
        id="img",
        name=None,
        status=status,
        disk_format="raw",
        container_format="bare",
        locations=tuple(Location(f"file:///{s}/img", s) for s in stores),
    )


def test_targets_default_explicit_and_all() -> None:
    web = ImportRequest(method="web-download", uri="http://x")
    assert resolve_targets(web, image(), CONFIGURED, "central") == ["central"]
    explicit = ImportRequest(method="web-download", uri="http://x", stores=("dcn1", "central"))
    assert resolve_targets(explicit, image(), CONFIGURED, "central") == ["dcn1", "central"]
    every = ImportRequest(method="web-download", uri="http://x", all_stores=True)
    assert resolve_targets(every, image(), CONFIGURED, "central") == CONFIGURED
    with pytest.raises(InvalidRequest, match="unknown store"):
        resolve_targets(
            ImportRequest(method="web-download", uri="u", stores=("edge9",)),
            image(),
            CONFIGURED,
            "central",
        )


def test_copy_image_refuses_or_skips_stores_that_have_it() -> None:
    have = image("central")
    with pytest.raises(ImageStateConflict, match="already present at store"):
        resolve_targets(
            ImportRequest(method="copy-image", stores=("central", "dcn0")),
            have,
            CONFIGURED,
            "central",
        )
    every = ImportRequest(method="copy-image", all_stores=True)
    assert resolve_targets(every, have, CONFIGURED, "central") == ["dcn0", "dcn1"]
    assert resolve_targets(every, image(*CONFIGURED), CONFIGURED, "central") == []
