"""Where the configuration comes from: the TOML file and ``IMGWORKER_<SECTION>__<KEY>``.

Standard library only. :func:`read_config` gives :func:`worker.config.settings.load_settings` the
raw data it validates; :func:`plain_database_url` gives the read-only commands
(``show``, ``list``, ``task-show``) the database URL without importing pydantic, whose
validation of every section takes longer than those commands may.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ENV_PREFIX = "IMGWORKER_"
CONFIG_ENV = "IMGWORKER_CONFIG"

#: ``[database] url`` when nothing sets it (:class:`worker.config.settings.DatabaseSettings`).
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./imgworker.db"
#: The keys of ``[database]``, as :class:`worker.config.settings.DatabaseSettings` declares them
#: (``tests/unit/test_settings.py`` checks they agree).
DATABASE_KEYS = frozenset({"url", "auto_upgrade"})


#: The exit status of a command its configuration stops (``config check``, a refused start:
#: an invalid file, credentials or a virtual host or database the broker or database refuses):
#: starting again cannot help, so the systemd units do not restart on it.
CONFIGURATION_REFUSED = 2
#: The exit status of a service that cannot listen on its configured address (in use, not
#: this host's, privileged): not restarted either (docs/operations.md lists the statuses).
CANNOT_LISTEN = 3


class ConfigError(Exception):
    """The configuration cannot be used; the message lists every problem and where it is."""


@dataclass(frozen=True, slots=True)
class RawConfig:
    """A configuration as read, before validation, and where each part came from."""

    data: dict[str, Any]
    #: The file's path, or ``defaults`` when there is none (for messages).
    source: str
    #: Each key set from the environment (``("stores", "dcn1", "path")``) and its variable.
    variables: dict[tuple[str, ...], str] = field(default_factory=dict)
    #: ``IMGWORKER_`` variables that set nothing (no ``__`` in their name): a setting spelt
    #: ``IMGWORKER_WORKER_CONCURRENCY`` would otherwise be ignored in silence.
    unused: tuple[str, ...] = ()


def read_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> RawConfig:
    """The TOML file (``path``, else ``$IMGWORKER_CONFIG``, else none) plus the overrides."""
    environ = os.environ if environ is None else environ
    path = path or environ.get(CONFIG_ENV) or None
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        source = os.fspath(path)
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError as exc:
            raise ConfigError(f"{source}: no such configuration file") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{source}: not valid TOML: {exc}") from exc
    variables = _apply_environment(data, environ)
    unused = tuple(
        name
        for name in environ
        if name.startswith(ENV_PREFIX) and name != CONFIG_ENV and "__" not in name
    )
    return RawConfig(data, source, variables, unused)


def plain_database_url(data: Mapping[str, Any]) -> str | None:
    """``[database] url`` of raw ``data`` when that section needs no validation to be used.

    None when the section has anything unusual (an unknown key, a value of the wrong type):
    the caller then validates the whole configuration, which says what is wrong.
    """
    section = data.get("database", {})
    if not isinstance(section, Mapping) or not set(section) <= DATABASE_KEYS:
        return None
    url = section.get("url", DEFAULT_DATABASE_URL)
    if not isinstance(url, str) or not isinstance(section.get("auto_upgrade", True), bool):
        return None
    return url


def _apply_environment(
    data: dict[str, Any], environ: Mapping[str, str]
) -> dict[tuple[str, ...], str]:
    variables: dict[tuple[str, ...], str] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or name == CONFIG_ENV or "__" not in name:
            continue
        keys = [part.lower() for part in name[len(ENV_PREFIX) :].split("__")]
        node = data
        for key in keys[:-1]:
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{name}: [{key}] is not a table in the configuration")
            node = child
        node[keys[-1]] = _parse_value(raw)
        variables[tuple(keys)] = name
    return variables


def _parse_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        return raw
