"""``imgworker import`` and ``imgworker copy``: the flow in this process, no broker needed."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import click

from worker.cli.env import DISK_FORMATS, Env, pass_env, run_with_services

if TYPE_CHECKING:
    from flows.request import ExpectedChecksum
    from flows.sources.prefetch import Prefetch
    from worker.tasks.embedded import EmbeddedResult
    from worker.tasks.services import Services


def _store_choice(stores: str | None, store: str | None, all_stores: bool) -> list[str]:
    chosen = [s.strip() for s in (stores or "").split(",") if s.strip()]
    if store:
        chosen.append(store)
    if all_stores and chosen:
        raise click.UsageError("give --stores/--store or --all-stores, not both")
    return chosen


def _parse_checksum(text: str) -> ExpectedChecksum:
    from flows.errors import ImportFailed
    from flows.request import parse_import_request

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


def _run_showing_progress(
    env: Env, work: Callable[[Services], Awaitable[EmbeddedResult]]
) -> EmbeddedResult:
    """Run an embedded import or copy with its steps and bars drawn on stderr."""
    from worker.cli.terminal import TerminalProgress

    settings = env.settings
    with TerminalProgress() as progress:
        return run_with_services(settings, work, progress)


def _finish(result: EmbeddedResult, as_json: bool) -> None:
    from flows.states import AttemptStatus
    from worker.cli.presenter import image_fields, render_table

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


@click.command("import")
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
    with _prefetching(env, uri, expected) as prefetch:
        from worker.tasks.embedded import import_image

        result = _run_showing_progress(
            env,
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
                prefetch=prefetch,
            ),
        )
    _finish(result, as_json)


@contextlib.contextmanager
def _prefetching(
    env: Env, uri: str | None, expected: ExpectedChecksum | None
) -> Iterator[Prefetch | None]:
    """The web-download started now, while the import's modules load (closed after).

    Only when the configuration lets web-download run at all; every other check (the URI's
    policy, the staging space) is the download's own, and its refusal is the import's.
    """
    if uri is None:
        yield None
        return
    from flows.request import WEB_DOWNLOAD
    from flows.sources.prefetch import Prefetch

    settings = env.settings
    if WEB_DOWNLOAD not in settings.import_.methods:
        yield None
        return
    prefetch = Prefetch(uri, expected, settings.flow_settings()).start()
    try:
        yield prefetch
    finally:
        prefetch.close()


@click.command("copy")
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
    from worker.tasks.embedded import copy_image

    result = _run_showing_progress(
        env,
        lambda services: copy_image(
            services, image_id, stores=targets, all_stores=all_stores, allow_failure=allow_failure
        ),
    )
    _finish(result, as_json)
