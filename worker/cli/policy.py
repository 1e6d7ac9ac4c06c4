"""``imgworker policy``: Glance's rules and their defaults, and checking a policy file."""

from __future__ import annotations

import click

from worker.cli.env import Env, pass_env


@click.group("policy")
def policy_group() -> None:
    """Who may do what: the policy rules (docs/policy.md)."""


@policy_group.command("list")
def policy_list() -> None:
    """Print every rule with its default as a sample policy file (oslopolicy-sample-generator's
    output: each rule commented out, with what it allows and the calls it guards)."""
    from oslo_config import cfg
    from oslo_policy import generator

    generator.generate_sample(["--namespace", "imgworker"], cfg.ConfigOpts())


@policy_group.command("check")
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False))
@pass_env
def policy_check(env: Env, files: tuple[str, ...]) -> None:
    """Check FILES (default: [api] policy_file and policy_dirs) as the API would apply them:
    each problem is printed with its file and line, and the exit status is 1."""
    from worker.api.policies.engine import PolicyEngine
    from worker.api.policies.files import PolicyFileError, PolicySources, read_rules

    api = env.settings.api
    try:
        if files:
            sources = [PolicySources.of(name, ()) for name in files]
            for source in sources:
                PolicyEngine(source)
            count = len(read_rules([s.file for s in sources if s.file is not None]))
        else:
            source = PolicySources.of(api.policy_file, api.policy_dirs)
            PolicyEngine(source)
            count = len(read_rules(source.files()))
    except PolicyFileError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"policy ok: {count} rule(s) written, the other rules keep their defaults")
