"""A click group that imports a command's module only when that command is needed."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click


class LazyGroup(click.Group):
    """A :class:`click.Group` whose commands are ``"module:attribute"`` references.

    The module is imported when the command runs or when ``--help`` lists the commands
    (click's documented lazy-loading pattern); listing is cheap because command modules
    import their heavy dependencies inside the command functions.
    """

    def __init__(self, *args: Any, lazy_commands: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy_commands = dict(lazy_commands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, sorted as click sorts them."""
        return sorted({*super().list_commands(ctx), *self.lazy_commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, importing its module the first time it is asked for."""
        reference = self.lazy_commands.get(cmd_name)
        if reference is None:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = reference.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{reference} is not a click command (registered as {cmd_name!r})")
        return command
