"""``imgworker config``: the configuration, checked."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from worker.cli.env import Env, pass_env

if TYPE_CHECKING:
    from flows.stores.rbd_config import RbdStoreConfig
    from flows.stores.rbd_leftover import WriterRelease
    from worker.config.settings import Settings


@click.group("config")
def config_group() -> None:
    """The configuration."""


@config_group.command("check")
@pass_env
def config_check(env: Env) -> None:
    """Validate the configuration; say exactly what is wrong and where (exit 2)."""
    from worker.api.exposure import exposure_of
    from worker.config.settings import ConfigError, load_settings
    from worker.config.source import CONFIGURATION_REFUSED

    source = env.config or "built-in defaults"
    try:
        settings = load_settings(env.config)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(CONFIGURATION_REFUSED)
    exposure = exposure_of(settings.api)
    if (refusal := exposure.refusal()) is not None:
        click.echo(f"{source}: {refusal}", err=True)
        sys.exit(CONFIGURATION_REFUSED)
    click.echo(f"configuration OK: {source}")
    click.echo(f"  database {settings.database.url}")
    if (shared := settings.database.shared_use_warning()) is not None:
        click.echo(f"  WARNING  {shared}")
    click.echo(f"  broker   {settings.broker.url} queue {settings.broker.queue}")
    stores = ", ".join(
        f"{name} ({config.type})" for name, config in settings.stores.backends.items()
    )
    click.echo(f"  stores   {stores}; default {settings.stores.default}")
    _check_takeovers(settings)
    click.echo(f"  api      {settings.api.listen}: {exposure.reach()}")
    click.echo(f"  identity {exposure.identity()}")
    for warning in exposure.warnings():
        click.echo(f"  WARNING  {warning}")
    if settings.api.auth == "keystone":
        keystone = settings.keystone
        who = keystone.application_credential_id or (
            f"user {keystone.username} in project {keystone.project_name}"
        )
        click.echo(
            f"  keystone {keystone.auth_url} as {who}; tokens cached "
            f"{keystone.cache_seconds:g} s at most"
        )


def _check_takeovers(settings: Settings) -> None:
    """Say how a task taken over after a crash frees what the dead worker's rbd writes hold,
    and warn when it must wait longer than the lease: Ceph keeps a dead client's watch for
    its watch timeout, and an image still watched cannot be removed."""
    lease = settings.worker.lease_seconds
    for name, config in settings.stores.backends.items():
        if config.type != "rbd":
            continue
        release = _writer_release(name, config)
        if release is None:
            continue
        click.echo(f"  takeover {name}: {release.describe()}")
        if not release.blocklist and lease < release.watch_timeout:
            click.echo(
                f"  WARNING  [stores.{name}]: lease_seconds ({lease:g}) is shorter than Ceph's "
                f"watch timeout (osd_client_watch_timeout = {release.watch_timeout:g} s) and "
                f"{config.conf} turns blocklisting off: a task taken over after a crash waits "
                "up to the watch timeout before it can clear the dead worker's half-written "
                f"image; raise lease_seconds to {release.watch_timeout:g} or remove "
                "'rbd blocklist on break lock = false'"
            )


def _writer_release(name: str, config: RbdStoreConfig) -> WriterRelease | None:
    """What store ``name``'s ceph.conf says about freeing a dead writer; None (warned) when
    it cannot be read."""
    if not Path(config.conf).is_file():
        click.echo(
            f"  WARNING  [stores.{name}]: conf {config.conf!r} is not a readable file: the "
            "store cannot reach its cluster; point conf at the cluster's ceph.conf"
        )
        return None
    try:
        from flows.stores.rbd import writer_release

        return writer_release(config)
    except ImportError:
        click.echo(
            f"  WARNING  [stores.{name}]: Ceph's python bindings (rados, rbd) are missing; "
            "install python3-rados and python3-rbd (deploy/dev/ceph-install.sh)"
        )
    except Exception as exc:
        click.echo(f"  WARNING  [stores.{name}]: cannot read {config.conf}: {exc}")
    return None
