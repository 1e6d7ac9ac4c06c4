"""URI filtering: every encoding of an internal address is refused, by its own rule."""

from __future__ import annotations

import dataclasses

import pytest

from flows.errors import SafetyRefusal
from flows.policy import SafetyPolicy
from flows.uri_filter import display, normalise_host, vet_uri

DEFAULT = SafetyPolicy()


@pytest.mark.parametrize(
    ("uri", "address"),
    [
        ("http://127.0.0.1/x", "127.0.0.1"),
        ("http://10.0.0.1/x", "10.0.0.1"),
        ("http://0x7f000001/x", "127.0.0.1"),
        ("http://2130706433/x", "127.0.0.1"),
        ("http://0177.0.0.1/x", "127.0.0.1"),
        ("http://127.1/x", "127.0.0.1"),
        ("http://[::1]/x", "::1"),
        ("http://[::ffff:127.0.0.1]/x", "::ffff:7f00:1"),
        ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
        ("http://224.0.0.1/x", "224.0.0.1"),
        ("http://0.0.0.0/x", "0.0.0.0"),
        ("http://192.168.1.10/x", "192.168.1.10"),
        ("http://[fe80::1]/x", "fe80::1"),
        ("http://localhost/x", None),
    ],
)
async def test_internal_addresses_are_refused(uri: str, address: str | None) -> None:
    with pytest.raises(SafetyRefusal) as refused:
        await vet_uri(uri, DEFAULT)
    assert refused.value.check == "uri_address"
    assert "downloads from internal addresses are refused" in refused.value.message
    if address is not None:
        assert f"resolves to {address}" in refused.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("[::1]", "::1"), ("example.org", None)],
)
def test_numeric_encodings_are_normalised(text: str, expected: str | None) -> None:
    found = normalise_host(text)
    assert (str(found) if found is not None else None) == expected


async def test_a_public_address_passes_with_its_address_pinned() -> None:
    target = await vet_uri("https://8.8.8.8/disk.qcow2", DEFAULT)
    assert (target.host, target.port, target.addresses) == ("8.8.8.8", 443, ("8.8.8.8",))


@pytest.mark.parametrize(
    ("uri", "policy", "check", "words"),
    [
        ("file:///etc/passwd", DEFAULT, "uri_scheme", "scheme 'file' is not allowed"),
        ("ftp://8.8.8.8/x", DEFAULT, "uri_scheme", "scheme 'ftp' is not allowed"),
        (
            "https://8.8.8.8/x",
            dataclasses.replace(DEFAULT, disallowed_schemes=("https",)),
            "uri_scheme",
            "scheme 'https' is disallowed",
        ),
        ("http://8.8.8.8:22/x", DEFAULT, "uri_port", "port 22 is not allowed"),
        (
            "http://8.8.8.8/x",
            dataclasses.replace(DEFAULT, allowed_ports=(), disallowed_ports=(80,)),
            "uri_port",
            "port 80 is disallowed",
        ),
        (
            "http://8.8.8.8/x",
            dataclasses.replace(DEFAULT, allowed_hosts=("images.example.org",)),
            "uri_host",
            "not in the allowed hosts",
        ),
        (
            "http://8.8.8.8/x",
            dataclasses.replace(DEFAULT, disallowed_hosts=("8.8.8.8",)),
            "uri_host",
            "host '8.8.8.8' is disallowed",
        ),
        (
            "http://134744072/x",
            dataclasses.replace(DEFAULT, disallowed_hosts=("8.8.8.8",)),
            "uri_host",
            "is disallowed",
        ),
        ("http://user:secret@8.8.8.8/x", DEFAULT, "uri_host", "credentials in the URI"),
    ],
)
async def test_rules_refuse_with_their_own_check(
    uri: str, policy: SafetyPolicy, check: str, words: str
) -> None:
    with pytest.raises(SafetyRefusal) as refused:
        await vet_uri(uri, policy)
    assert refused.value.check == check
    assert words in refused.value.message
    assert "secret" not in refused.value.message


async def test_trusted_hosts_may_be_internal_but_redirects_from_them_are_checked() -> None:
    policy = dataclasses.replace(DEFAULT, allowed_ports=(), trusted_hosts=("127.0.0.1",))
    assert (await vet_uri("http://127.0.0.1:8080/x", policy)).addresses == ("127.0.0.1",)
    with pytest.raises(SafetyRefusal) as refused:
        await vet_uri("http://10.0.0.1/x", policy, redirect_from="http://127.0.0.1:8080/x")
    assert refused.value.check == "redirect"
    assert "redirect from http://127.0.0.1:8080/x refused" in refused.value.message


def test_display_drops_credentials_and_query() -> None:
    assert display("https://u:p@example.org/a.img?token=abc") == "https://example.org/a.img"
