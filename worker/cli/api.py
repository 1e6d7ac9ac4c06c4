"""``imgworker api``: Glance's Image API v2 (see docs/api.md)."""

from __future__ import annotations

import click

from worker.cli.env import Env, pass_env


@click.command("api")
@click.option("--log-level", default="INFO", show_default=True)
@click.option("--text-logs", is_flag=True, help="Readable lines instead of JSON.")
@pass_env
def api_command(env: Env, log_level: str, text_logs: bool) -> None:
    """Serve Glance's Image API v2 on [api] listen until SIGTERM (see docs/api.md)."""
    import sys

    from worker.api.server import run_api
    from worker.daemon.logs import configure_logging, log_uncaught

    settings = env.settings
    configure_logging(log_level, json_lines=not text_logs)
    log_uncaught()
    sys.exit(run_api(settings))
