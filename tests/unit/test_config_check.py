"""``imgworker config check``: every problem, where it is, and exit status 2."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from worker.commands import main


def test_every_problem_is_listed_with_its_place(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[worker]\nconcurrency = 0\nhttp = "nope"\n[stores]\ndefault = "x"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"])
    assert result.exit_code == 2
    assert "3 problem(s)" in result.output
    assert "worker.concurrency: Input should be greater than or equal to 1" in result.output
    assert "[worker] http = 'nope' is not host:port" in result.output
    assert "default store 'x' is not configured" in result.output


def test_environment_overrides_are_checked_too() -> None:
    result = CliRunner().invoke(
        main,
        ["config", "check"],
        env={"IMGWORKER_WORKER__LEASE_SECONDS": "10", "IMGWORKER_WORKER__HEARTBEAT_SECONDS": "8"},
    )
    assert result.exit_code == 2
    assert "heartbeat_seconds (8.0) must be at most half of lease_seconds" in result.output


def test_a_good_configuration_is_summarised(tmp_path: Path) -> None:
    config = tmp_path / "good.toml"
    config.write_text('[stores]\ndefault = "a"\n[stores.a]\ntype = "file"\npath = "/srv/a"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"], env={})
    assert result.exit_code == 0, result.output
    assert "configuration OK" in result.output and "a (file); default a" in result.output


def test_keystone_auth_needs_a_usable_keystone_section(tmp_path: Path) -> None:
    config = tmp_path / "keystone.toml"
    config.write_text(
        '[api]\nauth = "keystone"\n[keystone]\nauth_url = "keystone:5000"\n'
        'username = "glance"\ncache_seconds = 3600\n'
    )
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"], env={})
    assert result.exit_code == 2
    assert "2 problem(s)" in result.output
    assert "keystone.auth_url: Value error, 'keystone:5000' is not an http(s) URL" in result.output
    assert "keystone.cache_seconds: Input should be less than or equal to 300" in result.output
    config.write_text('[keystone]\nauth_url = "http://ks:5000/v3"\nusername = "glance"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"], env={})
    assert "keystone: Value error, username 'glance' is set but not its password" in result.output


def test_keystone_auth_without_credentials_says_what_is_missing(tmp_path: Path) -> None:
    config = tmp_path / "keystone.toml"
    config.write_text('[api]\nauth = "keystone"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"], env={})
    assert result.exit_code == 2
    assert '[api] auth = "keystone" needs a usable [keystone] section' in result.output
    assert "auth_url (Keystone's v3 URL) is not set; no service credential" in result.output


def test_a_keystone_configuration_is_summarised_without_its_secret(tmp_path: Path) -> None:
    config = tmp_path / "keystone.toml"
    config.write_text(
        '[api]\nauth = "keystone"\n[keystone]\nauth_url = "https://ks.example:5000/v3"\n'
        'username = "glance"\npassword = "s3cret-pass"\ncache_seconds = 60\n'
    )
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"], env={})
    assert result.exit_code == 0, result.output
    assert (
        "keystone https://ks.example:5000/v3 as user glance in project service; "
        "tokens cached 60 s at most"
    ) in result.output
    assert "s3cret-pass" not in result.output


def test_an_unauthenticated_network_listener_is_refused_in_one_line() -> None:
    result = CliRunner().invoke(
        main, ["config", "check"], env={"IMGWORKER_API__LISTEN": "0.0.0.0:9292"}
    )
    assert result.exit_code == 2
    (line,) = result.output.splitlines()
    assert line.startswith('built-in defaults: [api] auth = "none" makes every caller an admin')
    assert "[api] allow_unauthenticated_network = true" in line


def test_the_exposure_is_summarised(tmp_path: Path) -> None:
    config = tmp_path / "open.toml"
    config.write_text('[api]\nlisten = "[::]:9292"\nallow_unauthenticated_network = true\n')
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"], env={})
    assert result.exit_code == 0, result.output
    assert "  api      [::]:9292: every address of this host, reachable from other hosts\n" in (
        result.output
    )
    assert "  identity none: callers from anywhere are admins of project admin" in result.output
    assert "  WARNING  [api] allow_unauthenticated_network = true: anyone who reaches" in (
        result.output
    )
    config.write_text('[api]\nauth = "headers"\ntrusted_proxies = ["192.0.2.7", "fd00::/64"]\n')
    result = CliRunner().invoke(main, ["--config", str(config), "config", "check"], env={})
    assert "  api      127.0.0.1:9292: loopback only (this host)\n" in result.output
    assert (
        "  identity headers set by an authenticating proxy, believed from 192.0.2.7/32, "
        "fd00::/64 ([api] trusted_proxies)"
    ) in result.output
    # The one warning is the default SQLite database (for one process), not the exposure.
    assert [line for line in result.output.splitlines() if "WARNING" in line] == [
        "  WARNING  [database] url is SQLite (sqlite+aiosqlite:///./imgworker.db), which is "
        "for one process (imgworker import): imgworker api and its workers share the records, "
        "so point [database] url at PostgreSQL (deploy/dev/stack.sh up makes one)"
    ]
