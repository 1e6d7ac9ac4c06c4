"""``imgworker run`` and ``imgworker drain``: a worker process, and asking one to stop."""

from __future__ import annotations

import sys

import click

from worker.cli.env import Env, pass_env


@click.command("run")
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--text-logs", is_flag=True, help="Readable lines instead of JSON.")
@pass_env
def run_command(env: Env, log_level: str, text_logs: bool) -> None:
    """Run a worker: consume import tasks from RabbitMQ until drained (SIGTERM)."""
    from worker.daemon.app import run_daemon
    from worker.daemon.logs import configure_logging

    settings = env.settings
    configure_logging(log_level, json_lines=not text_logs)
    sys.exit(run_daemon(settings))


@click.command("drain")
@click.option(
    "--address", help="host:port of the worker's HTTP endpoints (default: [worker] http)."
)
@pass_env
def drain_command(env: Env, address: str | None) -> None:
    """Ask a running worker to drain (POST /drain), as SIGTERM would."""
    import asyncio

    import aiohttp

    from worker.config.address import local_url

    base = local_url(address or env.settings.worker.http)
    token = env.settings.worker.drain_token
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}

    async def post() -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{base}/drain",
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response,
        ):
            return response.status

    try:
        status = asyncio.run(post())
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise click.ClickException(f"no worker answers at {base}: {exc}") from exc
    if status != 202:
        raise click.ClickException(f"the worker answered {status}")
    click.echo(f"drain started at {base}")
