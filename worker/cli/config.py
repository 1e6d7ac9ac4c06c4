"""``imgworker config``: the configuration, checked."""

from __future__ import annotations

import sys

import click

from worker.cli.env import Env, pass_env


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
    click.echo(f"  broker   {settings.broker.url} queue {settings.broker.queue}")
    stores = ", ".join(
        f"{name} ({config.type})" for name, config in settings.stores.backends.items()
    )
    click.echo(f"  stores   {stores}; default {settings.stores.default}")
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
