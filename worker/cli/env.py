"""What every command gets: the configuration, loaded once and lazily, and a clean way out.

Light on purpose: importing this module imports click and nothing of the worker's heavy
machinery (pydantic, SQLAlchemy, the flow), so that a command that does not need them never
pays for them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, TypeVar

import click

from worker.config.source import CONFIGURATION_REFUSED

if TYPE_CHECKING:
    from flows.errors import ImportFailed
    from flows.observer import FlowObserver
    from worker.config.settings import Settings
    from worker.tasks.services import Records, Services

T = TypeVar("T")

DISK_FORMATS = ("raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso", "ploop")


class ConfigurationRefused(click.ClickException):
    """The configuration cannot be used: its message lists what to change (exit status 2,
    on which the systemd units do not restart)."""

    exit_code = CONFIGURATION_REFUSED


class Env:
    """The ``--config`` given to ``imgworker`` and the settings read from it."""

    def __init__(self, config: str | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The configuration, or exit saying what is wrong."""
        if self._settings is None:
            from worker.config.settings import ConfigError, load_settings

            try:
                self._settings = load_settings(self.config)
            except ConfigError as exc:
                raise ConfigurationRefused(str(exc)) from exc
        return self._settings

    @property
    def database_url(self) -> str:
        """The records' URL, without validating the rest of the configuration if it can.

        A plain ``[database]`` section is read as it is (pydantic is not imported); anything
        unusual there is left to :attr:`settings`, whose validation says what is wrong.
        """
        if self._settings is None:
            from worker.config.source import ConfigError, plain_database_url, read_config

            try:
                url = plain_database_url(read_config(self.config).data)
            except ConfigError as exc:
                raise ConfigurationRefused(str(exc)) from exc
            if url is not None:
                return url
        return self.settings.database.url


pass_env = click.make_pass_decorator(Env)


def run_with_services(
    settings: Settings,
    work: Callable[[Services], Awaitable[T]],
    observer: FlowObserver | None = None,
) -> T:
    """Open the services, run ``work``, close them; bad input becomes a clean error."""
    from worker.tasks.services import Services

    async def scope() -> T:
        services = await Services.open(settings, observer)
        try:
            async with _relay(settings, services.records):
                return await work(services)
        finally:
            await services.close()

    return run(scope())


def run_with_records(settings: Settings, work: Callable[[Records], Awaitable[T]]) -> T:
    """Open the records alone (no stores), run ``work``, close them."""
    from worker.tasks.services import Records

    async def scope() -> T:
        database = settings.database
        records = await Records.open(
            database,
            lease_seconds=settings.worker.lease_seconds,
            notifications=settings.notifications,
        )
        try:
            async with _relay(settings, records):
                return await work(records)
        finally:
            await records.close()

    return run(scope())


def _relay(settings: Settings, records: Records) -> AbstractAsyncContextManager[object]:
    """The notifications a command records, sent while it runs and before it exits."""
    if not settings.notifications.enabled:
        return contextlib.nullcontext()
    from worker.notifications.relay import notification_relay, process_relay_id

    return notification_relay(settings, records.notifications, process_relay_id("cli"))


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine``; an :class:`~flows.errors.ImportFailed` becomes a one-line error."""
    import asyncio

    from flows.errors import ImportFailed

    try:
        return asyncio.run(coroutine)
    except ImportFailed as exc:
        raise exit_error(exc) from exc


def exit_error(error: ImportFailed) -> click.ClickException:
    """The one line (and exit status 1) a command ends with when ``error`` stopped it.

    It says whether trying again later may help: exactly when the error is a
    :class:`~flows.errors.TransientError`, the classification the API's 503 and the worker's
    retries read too.
    """
    if error.transient:
        return click.ClickException(f"{error} (temporary: try again later)")
    return click.ClickException(str(error))
