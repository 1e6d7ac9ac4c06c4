"""The ``imgworker`` entry point and the registry of its commands.

Every command answers without importing what it does not use: this module and
:mod:`worker.cli.env` import only click, and a command's module is imported only when that
command runs or ``--help`` lists the commands (:class:`worker.cli.lazy.LazyGroup`).
``imgworker --version`` and ``--help`` import no pydantic, SQLAlchemy, aiohttp or flow.

Adding a command is one module and one line:

1. ``worker/cli/<family>.py`` (or an existing family's module) declares the command with
   click. At the top it imports only click, :mod:`worker.cli.env` and other light modules
   (constants, :mod:`worker.cli.presenter`); everything the command *does* (settings, records,
   stores, the broker, the flow) is imported inside the command function. Get the settings
   with ``@pass_env`` and ``env.settings``; run async work with
   :func:`worker.cli.env.run_with_services` (or :func:`~worker.cli.env.run`), which turns a
   flow error into a one-line message and a non-zero exit.
2. Add ``"name": "worker.cli.<family>:<function>"`` to :data:`COMMANDS` below.

``tests/unit/test_cli_imports.py`` checks that ``--help`` still imports nothing heavy.
"""

from __future__ import annotations

import click

from worker.cli.env import Env
from worker.cli.lazy import LazyGroup
from worker.cli.quick_exit import exit_now

#: Command name → ``module:attribute`` of its click command (or group).
COMMANDS: dict[str, str] = {
    # embedded: the flow in this process
    "import": "worker.cli.importing:import_command",
    "copy": "worker.cli.importing:copy_command",
    "image-delete": "worker.cli.deleting:image_delete",
    "stores-delete": "worker.cli.deleting:stores_delete",
    # reading the records
    "show": "worker.cli.reading:show_command",
    "list": "worker.cli.reading:list_command",
    "task-show": "worker.cli.reading:task_show",
    "tasks": "worker.cli.reading:tasks_command",
    # the API side, in Glance's words
    "image-create": "worker.cli.images:image_create",
    "image-stage": "worker.cli.images:image_stage",
    "image-import": "worker.cli.images:image_import",
    # the services
    "api": "worker.cli.api:api_command",
    "run": "worker.cli.daemon:run_command",
    "drain": "worker.cli.daemon:drain_command",
    "health": "worker.cli.health:health_command",
    # administration
    "cache": "worker.cli.cache:cache_group",
    "config": "worker.cli.config:config_group",
    "db": "worker.cli.db:db_group",
    "policy": "worker.cli.policy:policy_group",
}


@click.group(
    cls=LazyGroup,
    lazy_commands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
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


def run() -> None:
    """The ``imgworker`` console script: :func:`main`, then an exit without the teardown.

    Only the script ends this way (see :mod:`worker.cli.quick_exit`); calling :func:`main`
    (click's test runner, other Python code) exits as usual.
    """
    try:
        main.main()
    except SystemExit as ended:
        exit_now(ended.code)
