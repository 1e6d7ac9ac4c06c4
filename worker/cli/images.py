"""``imgworker image-create``, ``image-stage``, ``image-import``: the API side, in Glance's words.

These record and enqueue; a worker (``imgworker run``) does the import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from worker.cli.env import DISK_FORMATS, Env, pass_env, run_with_services

if TYPE_CHECKING:
    from worker.tasks.services import Services


@click.command("image-create")
@click.option("--disk-format", required=True, type=click.Choice(DISK_FORMATS))
@click.option("--container-format", default="bare", show_default=True)
@click.option("--name")
@pass_env
def image_create(env: Env, disk_format: str, container_format: str, name: str | None) -> None:
    """Record a new (queued) image and print its id."""
    from worker.db.catalog import NewImage

    new = NewImage(
        owner=None, name=name, disk_format=disk_format, container_format=container_format
    )
    image = run_with_services(env.settings, lambda services: services.records.catalog.create(new))
    click.echo(image.id)


@click.command("image-stage")
@click.argument("image_id")
@click.option("--file", "path", required=True, type=click.Path(exists=True, dir_okay=False))
@pass_env
def image_stage(env: Env, image_id: str, path: str) -> None:
    """Put a local file into the staging area for glance-direct."""
    from worker.tasks.staging import stage_upload

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
    from flows.request import parse_import_request
    from flows.requester import RequestContext
    from worker.daemon.client import Publisher, enqueue_import
    from worker.tasks.submission import SubmissionRules

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
