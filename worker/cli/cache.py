"""``imgworker cache``: the guide's ``glance-cache-manage`` commands, for one node or all.

Lists come from the records (which node holds or queues what); changes are commands sent
through the broker to every node, or with ``--node NAME`` to that node alone, applied as
soon as each node takes them (a node that is down applies them when it returns). As
``glance-cache-manage``, a change asks for confirmation unless ``--force``, and says what it
did with ``--verbose``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from worker.cli.env import Env, pass_env, run_with_records

if TYPE_CHECKING:
    from worker.cache.bus import CacheCommand
    from worker.cache.records import EntryRow, EntryState, SqlCacheRecords
    from worker.tasks.services import Records

F = TypeVar("F", bound=Callable[..., Any])

NODE_HELP = "Only this node (its [cache] node name); default: every node."


@click.group("cache")
def cache_group() -> None:
    """The image cache of the API nodes (docs/cache.md)."""


def _node_option(command: F) -> F:
    return click.option("--node", default=None, help=NODE_HELP)(command)


def _change_options(command: F) -> F:
    command = click.option("-f", "--force", is_flag=True, help="Do not ask for confirmation.")(
        command
    )
    command = click.option("-v", "--verbose", is_flag=True, help="Say what was done.")(command)
    return _node_option(command)


@cache_group.command("list-cached")
@_node_option
@pass_env
def list_cached(env: Env, node: str | None) -> None:
    """List the cached images (and the node holding each)."""
    from worker.cache.records import EntryState

    rows = _rows(env, node, EntryState.CACHED)
    if not rows:
        click.echo("No cached images.")
        return
    click.echo(f"Found {len(rows)} cached images...")
    headers = ["ID", "Last Accessed (UTC)", "Last Modified (UTC)", "Size", "Hits"]
    table = [
        [r.image_id, _when(r.last_accessed), _when(r.last_modified), str(r.size), str(r.hits)]
        for r in rows
    ]
    _print(headers, table, rows, node)


@cache_group.command("list-queued")
@_node_option
@pass_env
def list_queued(env: Env, node: str | None) -> None:
    """List the images queued for caching (and the node that will fetch each)."""
    from worker.cache.records import EntryState

    rows = _rows(env, node, EntryState.QUEUED)
    if not rows:
        click.echo("No queued images.")
        return
    click.echo(f"Found {len(rows)} queued images...")
    _print(["ID"], [[row.image_id] for row in rows], rows, node)


@cache_group.command("list-nodes")
@pass_env
def list_nodes(env: Env) -> None:
    """List the API nodes with a cache: name, URL, images held and queued."""
    from worker.cli.presenter import render_grid

    async def work(records: Records) -> list[list[str]]:
        from worker.cache.records import EntryState
        from worker.cache.setup import cache_records

        rows = cache_records(records.engine)
        nodes, entries = await rows.nodes(), await rows.entries()
        return [
            [
                name,
                url,
                str(sum(1 for e in entries if e.node == name and e.state == EntryState.CACHED)),
                str(sum(1 for e in entries if e.node == name and e.state == EntryState.QUEUED)),
            ]
            for name, url in sorted(nodes.items())
        ]

    table = run_with_records(env.settings, work)
    click.echo(render_grid(["Node", "URL", "Cached", "Queued"], table))


@cache_group.command("queue-image")
@click.argument("image_id")
@_change_options
@pass_env
def queue_image(env: Env, image_id: str, node: str | None, force: bool, verbose: bool) -> None:
    """Queue an image for caching: each node fetches it at once."""
    from worker.cache.bus import Action, CacheCommand

    _valid(image_id)
    if force or click.confirm(f"Queue image {image_id} for caching?", default=False):
        _send(env, CacheCommand(Action.QUEUE, image_id, sender="cli"), node, check=image_id)
        _say(verbose, f"Queued image {image_id} for caching")


@cache_group.command("delete-cached-image")
@click.argument("image_id")
@_change_options
@pass_env
def delete_cached_image(
    env: Env, image_id: str, node: str | None, force: bool, verbose: bool
) -> None:
    """Delete an image from the cache."""
    _delete_one(env, image_id, node, force, verbose, "cache")


@cache_group.command("delete-queued-image")
@click.argument("image_id")
@_change_options
@pass_env
def delete_queued_image(
    env: Env, image_id: str, node: str | None, force: bool, verbose: bool
) -> None:
    """Delete an image from the cache queue."""
    _delete_one(env, image_id, node, force, verbose, "queue")


@cache_group.command("delete-all-cached-images")
@_change_options
@pass_env
def delete_all_cached(env: Env, node: str | None, force: bool, verbose: bool) -> None:
    """Remove all images from the cache."""
    _clear(env, node, force, verbose, "cache")


@cache_group.command("delete-all-queued-images")
@_change_options
@pass_env
def delete_all_queued(env: Env, node: str | None, force: bool, verbose: bool) -> None:
    """Remove all images from the cache queue."""
    _clear(env, node, force, verbose, "queue")


@cache_group.command("prune")
@_node_option
@pass_env
def prune(env: Env, node: str | None) -> None:
    """Prune now: bring each cache within its max_size (least recently used first)."""
    from worker.cache.bus import Action, CacheCommand

    _send(env, CacheCommand(Action.PRUNE, sender="cli"), node)
    click.echo(f"asked {_whom(node)} to prune")


@cache_group.command("clean")
@_node_option
@pass_env
def clean(env: Env, node: str | None) -> None:
    """Clean now: partial files, entries of deleted images, the records."""
    from worker.cache.bus import Action, CacheCommand

    _send(env, CacheCommand(Action.CLEAN, sender="cli"), node)
    click.echo(f"asked {_whom(node)} to clean")


def _delete_one(
    env: Env, image_id: str, node: str | None, force: bool, verbose: bool, target: str
) -> None:
    from worker.cache.bus import Action, CacheCommand, ClearTarget

    _valid(image_id)
    what = "cached" if target == "cache" else "queued"
    if force or click.confirm(f"Delete {what} image {image_id}?", default=False):
        command = CacheCommand(Action.DELETE, image_id, ClearTarget(target), sender="cli")
        _send(env, command, node)
        _say(verbose, f"Deleted {what} image {image_id}")


def _clear(env: Env, node: str | None, force: bool, verbose: bool, target: str) -> None:
    from worker.cache.bus import Action, CacheCommand, ClearTarget

    what = "cached" if target == "cache" else "queued"
    if force or click.confirm(f"Delete all {what} images?", default=False):
        _send(env, CacheCommand(Action.CLEAR, target=ClearTarget(target), sender="cli"), node)
        _say(verbose, f"Deleted all {what} images on {_whom(node)}")


def _rows(env: Env, node: str | None, state: EntryState) -> list[EntryRow]:
    async def work(records: Records) -> list[EntryRow]:
        from worker.cache.setup import cache_records

        rows = cache_records(records.engine)
        await _known(rows, node)
        return await rows.entries(node, state)

    return run_with_records(env.settings, work)


def _send(env: Env, command: CacheCommand, node: str | None, check: str | None = None) -> None:
    """Send ``command`` (after checking the node, and that image ``check`` may be queued)."""

    async def work(records: Records) -> None:
        from worker.cache.bus import CacheBus, UnknownNode
        from worker.cache.setup import cache_records

        await _known(cache_records(records.engine), node)
        if check is not None:
            await _queueable(records, check)
        bus = CacheBus(env.settings.broker)
        try:
            await bus.send(command, node)
        except UnknownNode as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            await bus.close()

    run_with_records(env.settings, work)


async def _known(rows: SqlCacheRecords, node: str | None) -> None:
    if node is None:
        return
    nodes = await rows.nodes()
    if node not in nodes:
        known = ", ".join(sorted(nodes)) or "none yet"
        raise click.ClickException(f"there is no cache node named {node!r} (known: {known})")


async def _queueable(records: Records, image_id: str) -> None:
    from flows.errors import NotFound
    from flows.states import ImageStatus

    try:
        image = await records.images.get(image_id)
    except NotFound:
        raise click.ClickException(f"Image {image_id} not found.") from None
    if image.status != ImageStatus.ACTIVE:
        raise click.ClickException(
            f"Image {image_id} is {image.status}: only active images can be queued for caching."
        )


def _valid(image_id: str) -> None:
    try:
        uuid.UUID(image_id)
    except ValueError:
        raise click.ClickException(f"Image ID '{image_id}' is not a valid UUID.") from None


def _print(
    headers: list[str], table: list[list[str]], rows: list[EntryRow], node: str | None
) -> None:
    from worker.cli.presenter import render_grid

    if node is None:
        headers = ["Node", *headers]
        table = [[row.node, *cells] for row, cells in zip(rows, table, strict=True)]
    click.echo(render_grid(headers, table))


def _when(epoch: float) -> str:
    import datetime

    if not epoch:
        return "N/A"
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return moment.replace(tzinfo=None).isoformat()


def _whom(node: str | None) -> str:
    return f"node {node}" if node else "every node"


def _say(verbose: bool, message: str) -> None:
    if verbose:
        click.echo(message)
