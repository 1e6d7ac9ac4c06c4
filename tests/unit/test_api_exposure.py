"""Who can reach ``imgworker api`` and whose identity headers it believes (no services)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from aiohttp.test_utils import make_mocked_request

from worker.api.errors import ApiError
from worker.api.exposure import OPT_IN, exposure_of
from worker.api.identity import AUTHENTICATION_REQUIRED, UNVERIFIED
from worker.api.proxies import IDENTITY_HEADERS, require_trusted_peer
from worker.config.address import LOOPBACK, IpNetwork, parse_network, within
from worker.config.settings import ApiSettings, ConfigError, load_settings


def networks(*values: str) -> tuple[IpNetwork, ...]:
    return tuple(parse_network(value) for value in values)


@pytest.mark.parametrize(
    ("remote", "trusted", "believed"),
    [
        ("127.0.0.1", LOOPBACK, True),
        ("127.4.5.6", LOOPBACK, True),
        ("::1", LOOPBACK, True),
        ("::ffff:127.0.0.1", LOOPBACK, True),
        ("10.1.2.3", LOOPBACK, False),
        ("::ffff:10.1.2.3", LOOPBACK, False),
        ("192.0.2.7", networks("192.0.2.7"), True),
        ("192.0.2.8", networks("192.0.2.7"), False),
        ("10.200.0.9", networks("10.0.0.0/8"), True),
        ("11.0.0.1", networks("10.0.0.0/8"), False),
        ("::ffff:10.200.0.9", networks("10.0.0.0/8"), True),
        ("10.200.0.9", networks("::ffff:10.0.0.0/104"), True),
        ("::ffff:10.200.0.9", networks("::ffff:10.0.0.0/104"), True),
        ("fd00::17", networks("fd00::/64"), True),
        ("fd00:0:0:1::17", networks("fd00::/64"), False),
        ("fe80::1%veth0", networks("fe80::/64"), True),
        ("2001:db8::1", networks("10.0.0.0/8"), False),
        ("10.0.0.1", (), False),
        (None, LOOPBACK, False),
        ("", LOOPBACK, False),
        ("/run/imgworker.sock", LOOPBACK, False),
    ],
)
def test_whose_identity_headers_are_believed(
    remote: str | None, trusted: tuple[IpNetwork, ...], believed: bool
) -> None:
    assert within(remote, trusted) is believed


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("10.0.0.1/8", "'10.0.0.1/8' has host bits set; write the network, 10.0.0.0/8"),
        ("proxy.example", "'proxy.example' is not an IP address or network"),
        ("10.0.0.0/33", "'10.0.0.0/33' is not an IP address or network"),
    ],
)
def test_a_bad_trusted_proxy_is_named_with_its_fix(value: str, problem: str) -> None:
    environ = {"IMGWORKER_API__TRUSTED_PROXIES": f'["127.0.0.1", "{value}"]'}
    with pytest.raises(ConfigError) as refused:
        load_settings(environ=environ)
    assert f"api.trusted_proxies: Value error, {problem}" in str(refused.value)


def test_trusted_proxies_default_to_loopback_and_take_one_address_or_a_list() -> None:
    assert ApiSettings().trusted_proxies == LOOPBACK
    one = load_settings(environ={"IMGWORKER_API__TRUSTED_PROXIES": "192.0.2.7"}).api
    assert one.trusted_proxies == networks("192.0.2.7/32")
    many = ApiSettings.model_validate({"trusted_proxies": ["10.0.0.0/8", "fd00::/64"]})
    assert many.trusted_proxies == networks("10.0.0.0/8", "fd00::/64")


@pytest.mark.parametrize(
    "listen", ["0.0.0.0:9292", ":9292", "[::]:9292", "192.0.2.7:9292", "no..such:9292"]
)
def test_none_beyond_loopback_is_refused_in_one_line_naming_the_key(listen: str) -> None:
    exposure = exposure_of(ApiSettings(listen=listen))
    refusal = exposure.refusal()
    assert refusal is not None and "\n" not in refusal
    assert f"{OPT_IN} = true" in refusal and f'listen = "{listen}"' in refusal


@pytest.mark.parametrize(
    "listen", ["127.0.0.1:9292", "127.0.0.2:0", "[::1]:9292", "[::ffff:127.0.0.1]:1", "localhost:1"]
)
def test_none_on_loopback_starts_without_a_word(listen: str) -> None:
    exposure = exposure_of(ApiSettings(listen=listen))
    assert exposure.loopback_only
    assert (exposure.refusal(), exposure.warnings()) == (None, [])
    assert exposure.identity().startswith("none: callers on this host are admins")


def test_the_opt_in_opens_the_network_with_a_warning() -> None:
    api = ApiSettings(listen="[::]:9292", allow_unauthenticated_network=True)
    exposure = exposure_of(api)
    assert exposure.refusal() is None
    (warning,) = exposure.warnings()
    assert warning.startswith(f"{OPT_IN} = true: anyone who reaches [::]:9292 from another host")
    assert exposure.identity().startswith("none: callers from anywhere are admins")


@pytest.mark.parametrize("auth", ["headers", "keystone"])
def test_authenticated_modes_may_listen_anywhere(auth: str) -> None:
    settings: dict[str, Any] = {"listen": "0.0.0.0:9292", "auth": auth}
    if auth == "keystone":
        settings["allow_unauthenticated_network"] = True  # no effect: not auth none
    exposure = exposure_of(ApiSettings.model_validate(settings))
    assert (exposure.refusal(), exposure.warnings()) == (None, [])
    assert exposure.reach() == "every address of this host, reachable from other hosts"


def test_the_headers_summary_says_whom_it_believes() -> None:
    api = ApiSettings.model_validate({"auth": "headers", "trusted_proxies": ["10.9.0.0/16"]})
    assert "believed from 10.9.0.0/16 ([api] trusted_proxies)" in exposure_of(api).identity()


@pytest.mark.parametrize("everywhere", ["0.0.0.0/0", "::/0"])
def test_trusting_every_address_is_warned_about(everywhere: str) -> None:
    api = ApiSettings.model_validate({"auth": "headers", "trusted_proxies": [everywhere]})
    (warning,) = exposure_of(api).warnings()
    assert "names its own identity" in warning


class _Transport:
    def __init__(self, peer: str) -> None:
        self.peer = peer

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return (self.peer, 40000) if name == "peername" else default


def _request(peer: str, headers: dict[str, str]) -> Any:
    return make_mocked_request("POST", "/v2/images", headers=headers, transport=_Transport(peer))


CLAIM = {"X-Identity-Status": "Confirmed", "X-Roles": "admin", "X-Project-Id": "p"}


def test_a_trusted_proxy_s_headers_pass() -> None:
    require_trusted_peer(_request("::ffff:127.0.0.1", CLAIM), LOOPBACK)
    require_trusted_peer(_request("10.0.0.5", CLAIM), networks("10.0.0.0/24"))


@pytest.mark.parametrize(
    "claim",
    [CLAIM, {"x-service-roles": "admin"}, {"X-Tenant-Id": "p"}, {"X-User-Id": "u"}],
)
def test_identity_headers_from_elsewhere_are_refused_and_logged(
    claim: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    forged = {**claim, "X-Forwarded-For": "127.0.0.1", "Forwarded": "for=127.0.0.1"}
    with caplog.at_level(logging.WARNING), pytest.raises(ApiError) as refused:
        require_trusted_peer(_request("10.0.0.5", forged), LOOPBACK)
    assert (refused.value.status, refused.value.message) == (401, AUTHENTICATION_REQUIRED)
    (record,) = caplog.records
    assert "from 10.0.0.5, which is not in [api] trusted_proxies" in record.getMessage()
    assert all(name in record.getMessage() for name in claim)


def test_a_request_without_identity_headers_from_elsewhere_is_anonymous(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING), pytest.raises(ApiError) as refused:
        require_trusted_peer(_request("10.0.0.5", {"X-Auth-Token": "t"}), LOOPBACK)
    assert (refused.value.status, refused.value.message) == (401, UNVERIFIED)
    assert caplog.records == []


def test_the_identity_headers_are_keystonemiddleware_s() -> None:
    for name in ("x-identity-status", "x-roles", "x-project-id", "x-tenant-id", "x-user-id"):
        assert name in IDENTITY_HEADERS
    assert {"x-service-identity-status", "x-service-roles", "x-is-admin-project"} <= (
        IDENTITY_HEADERS
    )
    assert "x-auth-token" not in IDENTITY_HEADERS and "x-service-token" not in IDENTITY_HEADERS
