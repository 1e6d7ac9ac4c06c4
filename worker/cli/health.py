"""``imgworker health``: whether this host's worker (or API) answers; the image's HEALTHCHECK."""

from __future__ import annotations

import click

from worker.cli.env import Env, pass_env


@click.command("health")
@click.option(
    "--api",
    "api",
    is_flag=True,
    help="Check `imgworker api` (GET /versions on [api] listen) instead of the worker.",
)
@click.option("--timeout", default=5.0, show_default=True, help="Seconds to wait for an answer.")
@pass_env
def health_command(env: Env, api: bool, timeout: float) -> None:
    """Exit 0 when the worker answers GET /livez on [worker] http (or, with --api, the API
    answers GET /versions); else say what answered instead and exit 1.

    It reads the same configuration as the process it checks, so it follows the address
    wherever that configuration puts it.
    """
    from urllib.error import HTTPError
    from urllib.request import urlopen

    from worker.config.address import local_url

    settings = env.settings
    if api:
        url = local_url(settings.api.listen) + "/versions"
    else:
        url = local_url(settings.worker.http) + "/livez"
    try:
        with urlopen(url, timeout=timeout) as response:
            status = response.status
    except HTTPError as exc:
        status = exc.code
    except OSError as exc:
        raise click.ClickException(f"nothing answers at {url}: {exc}") from exc
    if status != 200:
        raise click.ClickException(f"{url} answered {status}")
    click.echo(f"{url}: ok")
