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
    from worker.config.settings import ConfigError, load_settings

    try:
        settings = load_settings(env.config)
    except ConfigError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(f"configuration OK: {env.config or 'built-in defaults'}")
    click.echo(f"  database {settings.database.url}")
    click.echo(f"  broker   {settings.broker.url} queue {settings.broker.queue}")
    stores = ", ".join(
        f"{name} ({config.type})" for name, config in settings.stores.backends.items()
    )
    click.echo(f"  stores   {stores}; default {settings.stores.default}")
    click.echo(f"  api      {settings.api.listen}, auth {settings.api.auth}")
    if settings.api.auth == "keystone":
        keystone = settings.keystone
        who = keystone.application_credential_id or (
            f"user {keystone.username} in project {keystone.project_name}"
        )
        click.echo(
            f"  keystone {keystone.auth_url} as {who}; tokens cached "
            f"{keystone.cache_seconds:g} s at most"
        )
