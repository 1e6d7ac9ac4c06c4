"""``imgworker show``, ``list`` and ``task-show``: the records, read and printed."""

from __future__ import annotations

import json

import click

from worker.cli.env import Env, pass_env, run_with_services
from worker.presenter import IMAGE_FIELDS


@click.command("show")
@click.argument("image_id")
@click.option(
    "--json", "as_json", is_flag=True, help=f"One JSON object: {', '.join(IMAGE_FIELDS)}."
)
@pass_env
def show_command(env: Env, image_id: str, as_json: bool) -> None:
    """Show an image: status, stores, the import lists, hashes, locations."""
    from worker.presenter import image_fields, render_table

    image = run_with_services(env.settings, lambda services: services.images.get(image_id))
    fields = image_fields(image)
    click.echo(json.dumps(fields, indent=2) if as_json else render_table(fields))


@click.command("list")
@click.option("--include-stores", is_flag=True, help="Add the stores each image is in.")
@pass_env
def list_command(env: Env, include_stores: bool) -> None:
    """List images."""
    images = run_with_services(env.settings, lambda services: services.images.list())
    for image in images:
        row = [image.id, image.status.ljust(9), image.name or ""]
        if include_stores:
            row.append(",".join(image.stores))
        click.echo("  ".join(row))


@click.command("task-show")
@click.argument("task_id")
@click.option("--json", "as_json", is_flag=True)
@pass_env
def task_show(env: Env, task_id: str, as_json: bool) -> None:
    """Show a task: status, message, input, result."""
    from worker.presenter import task_fields

    task = run_with_services(env.settings, lambda services: services.tasks.get(task_id))
    fields = task_fields(task)
    if as_json:
        click.echo(json.dumps(fields, indent=2, default=str))
    else:
        for key, value in fields.items():
            click.echo(f"{key:12s} {value if value is not None else ''}")
