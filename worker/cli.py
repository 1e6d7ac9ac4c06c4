"""``imgworker``: the command line, in the words a Glance user knows."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from flows.errors import ImportFailed
from flows.observer import FlowObserver
from flows.request import ExpectedChecksum, parse_import_request
from flows.states import AttemptStatus
from worker.db.schema import upgrade
from worker.embedded import EmbeddedResult, copy_image, import_image
from worker.presenter import IMAGE_FIELDS, image_fields, render_table
from worker.services import Services
from worker.settings import ConfigError, Settings, load_settings
from worker.terminal import TerminalProgress

T = TypeVar("T")

DISK_FORMATS = ("raw", "qcow2", "vmdk", "vhd", "vhdx", "vdi", "iso", "ploop")


class Env:
    """What every command gets: the settings, loaded once and lazily."""

    def __init__(self, config: str | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The configuration, or exit 2 saying what is wrong."""
        if self._settings is None:
            try:
                self._settings = load_settings(self.config)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from exc
        return self._settings


pass_env = click.make_pass_decorator(Env)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    envvar="IMGWORKER_CONFIG",
    type=click.Path(dir_okay=False),
    help="TOML configuration file (default: $IMGWORKER_CONFIG, else built-in defaults).",
)
@click.version_option(package_name="imgworker")
@click.pass_context
def main(ctx: click.Context, config: str | None) -> None:
    """imgworker: import, convert and copy VM images into stores (Glance's image import)."""
    ctx.obj = Env(config)


def run_with_services(
    settings: Settings,
    work: Callable[[Services], Awaitable[T]],
    observer: FlowObserver | None = None,
) -> T:
    """Open the services, run ``work``, close them; bad input becomes a clean error."""

    async def scope() -> T:
        services = await Services.open(settings, observer)
        try:
            return await work(services)
        finally:
            await services.close()

    return _run(scope())


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coroutine)
    except ImportFailed as exc:
        raise click.ClickException(str(exc)) from exc


def _store_choice(stores: str | None, store: str | None, all_stores: bool) -> list[str]:
    chosen = [s.strip() for s in (stores or "").split(",") if s.strip()]
    if store:
        chosen.append(store)
    if all_stores and chosen:
        raise click.UsageError("give --stores/--store or --all-stores, not both")
    return chosen


def _parse_checksum(text: str) -> ExpectedChecksum:
    algo, _, value = text.partition(":")
    try:
        request = parse_import_request(
            {
                "method": {
                    "name": "web-download",
                    "uri": "-",
                    "checksum": {"algo": algo, "value": value},
                }
            }
        )
    except ImportFailed as exc:
        raise click.BadParameter(str(exc), param_hint="--checksum") from exc
    assert request.checksum is not None
    return request.checksum


def _finish(result: EmbeddedResult, as_json: bool) -> None:
    fields = image_fields(result.image)
    if as_json:
        click.echo(json.dumps(fields, indent=2))
    else:
        click.echo(render_table(fields))
    if result.outcome.status != AttemptStatus.SUCCESS:
        click.echo(f"error: import failed: {result.outcome.message}", err=True)
        sys.exit(1)
    if result.image.properties.get("os_glance_failed_import"):
        click.echo(f"warning: {result.outcome.message}", err=True)


@main.command("import")
@click.option("--uri", help="web-download: the image's URL.")
@click.option(
    "--file",
    "file_",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="glance-direct: a local file to stage and import.",
)
@click.option(
    "--checksum",
    metavar="ALGO:HEX",
    help="web-download: the expected checksum of the downloaded bits, e.g. sha256:9f86...",
)
@click.option("--disk-format", required=True, type=click.Choice(DISK_FORMATS))
@click.option("--container-format", default="bare", show_default=True)
@click.option("--name", help="The image's name (default: the file or URL).")
@click.option("--stores", help="Comma-separated target stores, written in this order.")
@click.option("--store", help="One target store.")
@click.option("--all-stores", is_flag=True, help="Every configured store.")
@click.option(
    "--allow-failure/--no-allow-failure",
    default=True,
    show_default=True,
    help="Keep going when a store fails (the image is active once one store has it).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_env
def import_command(
    env: Env,
    uri: str | None,
    file_: Path | None,
    checksum: str | None,
    disk_format: str,
    container_format: str,
    name: str | None,
    stores: str | None,
    store: str | None,
    all_stores: bool,
    allow_failure: bool,
    as_json: bool,
) -> None:
    """Create an image and import it in this process (no broker needed)."""
    if (uri is None) == (file_ is None):
        raise click.UsageError("give exactly one of --uri and --file")
    expected = _parse_checksum(checksum) if checksum else None
    if expected and uri is None:
        raise click.UsageError("--checksum goes with --uri (the downloaded bits)")
    targets = _store_choice(stores, store, all_stores)
    progress = TerminalProgress()
    result = run_with_services(
        env.settings,
        lambda services: import_image(
            services,
            disk_format=disk_format,
            file=file_,
            uri=uri,
            checksum=expected,
            container_format=container_format,
            name=name,
            stores=targets,
            all_stores=all_stores,
            allow_failure=allow_failure,
        ),
        progress,
    )
    _finish(result, as_json)


@main.command("copy")
@click.argument("image_id")
@click.option("--stores", help="Comma-separated stores to copy the image to.")
@click.option("--all-stores", is_flag=True, help="Every store that does not have it yet.")
@click.option("--allow-failure/--no-allow-failure", default=True, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_env
def copy_command(
    env: Env,
    image_id: str,
    stores: str | None,
    all_stores: bool,
    allow_failure: bool,
    as_json: bool,
) -> None:
    """Copy an active image's data to more stores (copy-image)."""
    targets = _store_choice(stores, None, all_stores)
    if not targets and not all_stores:
        raise click.UsageError("give --stores a,b or --all-stores")
    result = run_with_services(
        env.settings,
        lambda services: copy_image(
            services, image_id, stores=targets, all_stores=all_stores, allow_failure=allow_failure
        ),
        TerminalProgress(),
    )
    _finish(result, as_json)


@main.command("show")
@click.argument("image_id")
@click.option(
    "--json", "as_json", is_flag=True, help=f"One JSON object: {', '.join(IMAGE_FIELDS)}."
)
@pass_env
def show_command(env: Env, image_id: str, as_json: bool) -> None:
    """Show an image: status, stores, the import lists, hashes, locations."""
    image = run_with_services(env.settings, lambda services: services.images.get(image_id))
    fields = image_fields(image)
    click.echo(json.dumps(fields, indent=2) if as_json else render_table(fields))


@main.command("list")
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


@main.group("db")
def db_group() -> None:
    """The image and task records."""


@db_group.command("upgrade")
@pass_env
def db_upgrade(env: Env) -> None:
    """Create or upgrade the database schema (Alembic)."""
    url = env.settings.database.url
    _run(upgrade(url))
    click.echo(f"schema up to date: {url}")
