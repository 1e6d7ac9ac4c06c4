"""The daemon's commands and the API-side commands (in Glance's words), added to ``imgworker``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
import click

from flows.context import RequestContext
from flows.request import parse_import_request
from worker.address import parse_address
from worker.cli import DISK_FORMATS, Env, pass_env, run_with_services
from worker.daemon.app import run_daemon
from worker.daemon.client import Publisher, enqueue_import
from worker.daemon.logs import configure_logging
from worker.presenter import task_fields
from worker.services import Services
from worker.settings import ConfigError, load_settings
from worker.staging import stage_upload
from worker.submission import SubmissionRules


def register(main: click.Group) -> None:
    """Attach the commands to the ``imgworker`` group."""
    for command in (
        run_command,
        api_command,
        config_group,
        image_create,
        image_stage,
        image_import,
        task_show,
        drain_command,
    ):
        main.add_command(command)


@click.command("run")
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--text-logs", is_flag=True, help="Readable lines instead of JSON.")
@pass_env
def run_command(env: Env, log_level: str, text_logs: bool) -> None:
    """Run a worker: consume import tasks from RabbitMQ until drained (SIGTERM)."""
    settings = env.settings
    configure_logging(log_level, json_lines=not text_logs)
    sys.exit(run_daemon(settings))


@click.command("api")
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--text-logs", is_flag=True, help="Readable lines instead of JSON.")
@pass_env
def api_command(env: Env, log_level: str, text_logs: bool) -> None:
    """Serve Glance's Image API v2 on [api] listen until SIGTERM (see docs/api.md)."""
    from worker.api.server import serve

    settings = env.settings
    configure_logging(log_level, json_lines=not text_logs)
    asyncio.run(serve(settings))


@click.group("config")
def config_group() -> None:
    """The configuration."""


@config_group.command("check")
@pass_env
def config_check(env: Env) -> None:
    """Validate the configuration; say exactly what is wrong and where (exit 2)."""
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


@click.command("image-create")
@click.option("--disk-format", required=True, type=click.Choice(DISK_FORMATS))
@click.option("--container-format", default="bare", show_default=True)
@click.option("--name")
@pass_env
def image_create(env: Env, disk_format: str, container_format: str, name: str | None) -> None:
    """Record a new (queued) image and print its id."""
    image = run_with_services(
        env.settings,
        lambda services: services.images.create(
            name=name, disk_format=disk_format, container_format=container_format
        ),
    )
    click.echo(image.id)


@click.command("image-stage")
@click.argument("image_id")
@click.option("--file", "path", required=True, type=click.Path(exists=True, dir_okay=False))
@pass_env
def image_stage(env: Env, image_id: str, path: str) -> None:
    """Put a local file into the staging area for glance-direct."""
    settings = env.settings
    size = run_with_services(
        settings,
        lambda services: stage_upload(services.images, settings.staging.dir, image_id, Path(path)),
    )
    click.echo(f"staged {size} bytes for image {image_id}")


@click.command("image-import")
@click.argument("image_id")
@click.option(
    "--import-method",
    required=True,
    type=click.Choice(["web-download", "glance-direct", "copy-image"]),
)
@click.option("--uri", help="web-download: the image's URL.")
@click.option("--stores", help="Comma-separated target stores.")
@click.option("--all-stores", is_flag=True)
@click.option("--allow-failure/--no-allow-failure", default=True, show_default=True)
@pass_env
def image_import(
    env: Env,
    image_id: str,
    import_method: str,
    uri: str | None,
    stores: str | None,
    all_stores: bool,
    allow_failure: bool,
) -> None:
    """Enqueue an import of IMAGE_ID and print the task id."""
    method: dict[str, object] = {"name": import_method}
    if uri is not None:
        method["uri"] = uri
    body: dict[str, object] = {
        "method": method,
        "all_stores": all_stores,
        "all_stores_must_succeed": not allow_failure,
    }
    if stores:
        body["stores"] = [s.strip() for s in stores.split(",") if s.strip()]
    try:
        request = parse_import_request(body)
    except Exception as exc:
        raise click.UsageError(str(exc)) from exc
    settings = env.settings

    async def enqueue(services: Services) -> str:
        async with Publisher(settings.broker) as publisher:
            return await enqueue_import(
                services.records,
                SubmissionRules.from_settings(settings),
                publisher,
                image_id=image_id,
                request=request,
                requester=RequestContext(),
            )

    click.echo(run_with_services(settings, enqueue))


@click.command("task-show")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True)
@pass_env
def task_show(env: Env, task_id: str, as_json: bool) -> None:
    """Show a task: status, message, input, result."""
    task = run_with_services(env.settings, lambda services: services.tasks.get(task_id))
    fields = task_fields(task)
    if as_json:
        click.echo(json.dumps(fields, indent=2, default=str))
    else:
        for key, value in fields.items():
            click.echo(f"{key:12s} {value if value is not None else ''}")


@click.command("drain")
@click.option(
    "--address", help="host:port of the worker's HTTP endpoints (default: [worker] http)."
)
@pass_env
def drain_command(env: Env, address: str | None) -> None:
    """Ask a running worker to drain (POST /drain), as SIGTERM would."""
    host, port = parse_address(address or env.settings.worker.http)
    host = "127.0.0.1" if host in ("0.0.0.0", "") else host
    token = env.settings.worker.drain_token
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}

    async def post() -> int:
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"http://{host}:{port}/drain",
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=10),
            ) as response,
        ):
            return response.status

    try:
        status = asyncio.run(post())
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise click.ClickException(f"no worker answers on {host}:{port}: {exc}") from exc
    if status != 202:
        raise click.ClickException(f"the worker answered {status}")
    click.echo(f"drain started on {host}:{port}")
