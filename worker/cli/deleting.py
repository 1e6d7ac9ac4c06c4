"""``imgworker image-delete`` and ``stores-delete``: deletion, in this process (embedded).

The record changes first, exactly as through the API; then the data is removed here rather
than by a worker. If a store will not give its data up now (down, an RBD image with clones),
the delete task stays pending with the reason and the command exits 1; a running worker's
sweeper (``imgworker run``) retries it until the data is gone.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import click

from flows.states import AttemptStatus
from worker.cli.env import Env, pass_env, run_with_services

if TYPE_CHECKING:
    from worker.tasks.runner import TaskOutcome
    from worker.tasks.services import Services


async def _delete(services: Services, *, image_id: str) -> TaskOutcome | None:
    from worker.tasks.embedded import delete_image

    return await delete_image(services, image_id)


def _report(outcome_status: str, message: str) -> None:
    if outcome_status == AttemptStatus.SUCCESS:
        click.echo(message)
        return
    click.echo(f"warning: the data is not all gone yet: {message}", err=True)
    click.echo("the delete task stays pending; a running worker retries it", err=True)
    raise SystemExit(1)


@click.command("image-delete")
@click.argument("image_ids", nargs=-1, required=True)
@pass_env
def image_delete(env: Env, image_ids: tuple[str, ...]) -> None:
    """Delete images: the records at once, then their data in every store."""
    for image_id in image_ids:
        outcome = run_with_services(env.settings, functools.partial(_delete, image_id=image_id))
        if outcome is None:
            click.echo(f"deleted image {image_id} (it had no data)")
        else:
            _report(outcome.status, f"deleted image {image_id}: {outcome.message}")


@click.command("stores-delete")
@click.argument("image_id")
@click.option("--store", required=True, help="The store to remove the image's data from.")
@pass_env
def stores_delete(env: Env, image_id: str, store: str) -> None:
    """Remove an image's data from one store (not its only copy)."""
    from worker.tasks.embedded import delete_from_store

    outcome = run_with_services(env.settings, lambda s: delete_from_store(s, image_id, store))
    _report(outcome.status, f"removed image {image_id} from store {store}: {outcome.message}")
