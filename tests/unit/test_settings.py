"""Configuration: defaults, the TOML file, environment overrides, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from flows.stores.file import FileStoreConfig
from flows.stores.rbd_config import RbdStoreConfig
from worker.commands import main
from worker.config.settings import ConfigError, DatabaseSettings, load_settings
from worker.config.source import DATABASE_KEYS, DEFAULT_DATABASE_URL, plain_database_url


def test_defaults_need_no_file() -> None:
    settings = load_settings(environ={})
    assert settings.database.url.startswith("sqlite+aiosqlite:///")
    assert settings.stores.default == "default"
    assert isinstance(settings.stores.backends["default"], FileStoreConfig)
    assert settings.staging.dir == Path("./staging")
    assert settings.import_.convert_to == "raw"


def test_file_and_environment_overrides(tmp_path: Path) -> None:
    config = tmp_path / "imgworker.toml"
    config.write_text(
        """
[worker]
concurrency = 3
[stores]
default = "central"
[stores.central]
type = "file"
path = "/srv/central"
[stores.dcn0]
type = "rbd"
conf = "/etc/ceph/dcn0.conf"
user = "glance"
"""
    )
    settings = load_settings(
        config,
        environ={
            "IMGWORKER_WORKER__CONCURRENCY": "8",
            "IMGWORKER_STORES__CENTRAL__PATH": "/data/central",
            "IMGWORKER_IMPORT__METHODS": '["web-download"]',
            "IMGWORKER_IMPORT__CONVERT_TO": '""',
        },
    )
    assert settings.worker.concurrency == 8
    central = settings.stores.backends["central"]
    assert isinstance(central, FileStoreConfig) and central.path == "/data/central"
    dcn0 = settings.stores.backends["dcn0"]
    assert isinstance(dcn0, RbdStoreConfig) and dcn0.user == "glance" and dcn0.pool == "images"
    assert settings.import_.methods == ("web-download",)
    assert settings.import_.convert_to == ""


def test_config_env_variable_names_the_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[staging]\ndir = "/srv/staging"\n')
    settings = load_settings(environ={"IMGWORKER_CONFIG": str(config)})
    assert settings.staging.dir == Path("/srv/staging")


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("[worker]\nconcurrency = 0\n", "worker.concurrency"),
        ("[worker]\nbogus = 1\n", "worker.bogus"),
        ('[stores]\ndefault = "nope"\n', "default store 'nope' is not configured"),
        ('[stores.x]\ntype = "s3"\n', "stores"),
        ('[import]\nmethods = ["glance-download"]\n', "unknown import methods"),
        ("[worker]\nlease_seconds = 10\nheartbeat_seconds = 30\n", "at most half"),
    ],
)
def test_errors_say_what_and_where(tmp_path: Path, toml: str, expected: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(config, environ={})
    assert expected in str(caught.value)
    assert str(config) in str(caught.value)


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_settings(tmp_path / "absent.toml", environ={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[worker\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken, environ={})


def test_the_plain_database_keys_are_the_declared_ones() -> None:
    assert set(DatabaseSettings.model_fields) == DATABASE_KEYS
    assert DatabaseSettings().url == DEFAULT_DATABASE_URL


@pytest.mark.parametrize(
    ("section", "url"),
    [
        ({}, DEFAULT_DATABASE_URL),
        ({"url": "sqlite:///x.db", "auto_upgrade": False}, "sqlite:///x.db"),
        ({"ulr": "sqlite:///x.db"}, None),
        ({"url": 5}, None),
        ({"auto_upgrade": "yes"}, None),
    ],
)
def test_plain_database_url_leaves_anything_unusual_to_validation(
    section: dict[str, object], url: str | None
) -> None:
    assert plain_database_url({"database": section, "worker": {"concurrency": 0}}) == url


def test_a_read_command_reports_a_database_typo(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[database]\nulr = "sqlite:///elsewhere.db"\n')
    result = CliRunner().invoke(main, ["--config", str(config), "list"], env={})
    assert result.exit_code == 2
    assert "database.ulr: unknown key in [database]; did you mean url?" in result.output


def test_notifications_are_glance_s_defaults_and_off() -> None:
    notifications = load_settings(environ={}).notifications
    assert (notifications.driver, notifications.exchange) == ("noop", "glance")
    assert notifications.topics == ("notifications",)
    assert notifications.publisher_id == "image.localhost"
    assert not notifications.enabled and not notifications.durable


def test_notifications_from_the_environment_default_to_the_task_broker() -> None:
    settings = load_settings(
        environ={
            "IMGWORKER_NOTIFICATIONS__DRIVER": "messagingv2",
            "IMGWORKER_NOTIFICATIONS__TOPICS": '["notifications", "searchlight"]',
            "IMGWORKER_BROKER__URL": "amqp://u:p@rabbit:5672/",
        }
    )
    notifications = settings.notifications
    assert notifications.enabled
    assert notifications.topics == ("notifications", "searchlight")
    assert notifications.broker_url(settings.broker) == "amqp://u:p@rabbit:5672/"


def test_notifications_need_a_known_driver_and_a_topic() -> None:
    with pytest.raises(ConfigError, match=r"notifications\.driver"):
        load_settings(environ={"IMGWORKER_NOTIFICATIONS__DRIVER": "kafka"})
    with pytest.raises(ConfigError, match="at least one topic"):
        load_settings(environ={"IMGWORKER_NOTIFICATIONS__TOPICS": "[]"})
