"""The policy engine: Glance's rules, an operator's files, evaluated by oslo.policy.

An :class:`PolicyEngine` holds one oslo.policy ``Enforcer`` at a time. A new one is built
whenever the files change — on a private ``ConfigOpts`` (nothing global), the defaults
registered, the files read strictly first (:mod:`.files`) and then loaded by oslo.policy —
and it replaces the old one only when all of that succeeded: a broken file never leaves the
rules half-applied; the engine keeps the rules it had and logs why.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from oslo_config import cfg
from oslo_policy.policy import Enforcer

from worker.api.policies import list_rules
from worker.api.policies.decisions import Decisions
from worker.api.policies.files import (
    PolicyFileError,
    PolicySources,
    Signature,
    check_references,
    read_rules,
)

log = logging.getLogger(__name__)

#: Reading the files again when they changed while being read.
_READ_ATTEMPTS = 3


class Caller(Protocol):
    """Who asks: what the API knows of every caller."""

    @property
    def project_id(self) -> str | None: ...

    @property
    def user_id(self) -> str | None: ...

    @property
    def roles(self) -> tuple[str, ...]: ...


def credentials(caller: Caller) -> dict[str, Any]:
    """The caller as oslo.policy's checks read them: oslo.context's ``to_policy_values``."""
    return {
        "user_id": caller.user_id,
        "user_domain_id": None,
        "system_scope": None,
        "domain_id": None,
        "project_id": caller.project_id,
        "project_domain_id": None,
        "roles": list(caller.roles),
        "is_admin_project": True,
        "service_user_id": None,
        "service_user_domain_id": None,
        "service_project_id": None,
        "service_project_domain_id": None,
        "service_roles": [],
    }


class UnknownRule(Exception):
    """A handler asked for a rule nobody registered (a bug, never the caller's fault)."""


class PolicyEngine:
    """Decides whether a caller may do something, by rule name, target and credentials."""

    def __init__(self, sources: PolicySources) -> None:
        """Load the rules now; :class:`PolicyFileError` when a file cannot be applied."""
        self.sources = sources
        enforcer, self._signature = _build(sources)
        self._in_force = _InForce(enforcer, Decisions(enforcer.rules))
        self._refused: Signature | None = None
        self._names = frozenset(enforcer.registered_rules)

    def allows(self, rule: str, target: Mapping[str, Any], caller: Caller) -> bool:
        """Whether ``rule`` admits ``caller`` on ``target`` (a rule of another scope: no)."""
        if rule not in self._names:
            raise UnknownRule(f"policy rule {rule!r} is not registered")
        rules = self._in_force
        return rules.decisions.answer(
            rule,
            target,
            (caller.project_id, caller.user_id, caller.roles),
            lambda: bool(rules.enforcer.enforce(rule, target, credentials(caller))),
        )

    def refresh(self) -> bool:
        """Apply the files if they changed since last read; True when new rules apply.

        Blocking (it stats and reads files): run it in a thread from async code.
        """
        signature = self.sources.signature()
        if signature in (self._signature, self._refused):
            return False
        try:
            enforcer, self._signature = _build(self.sources)
        except PolicyFileError as error:
            self._refused = signature
            log.error("policy files not applied, the previous rules stay in force: %s", error)
            return False
        # One assignment switches the rules and their answers together (requests read it
        # from the event loop while this runs in a thread).
        self._in_force = _InForce(enforcer, Decisions(enforcer.rules))
        self._refused = None
        log.info("policy rules reloaded from %s", _describe(self.sources))
        return True

    def enforcer(self) -> Enforcer:
        """The oslo.policy enforcer in force (for oslo.policy's own tools)."""
        return self._in_force.enforcer


@dataclass(frozen=True, slots=True)
class _InForce:
    enforcer: Enforcer
    decisions: Decisions


def _build(sources: PolicySources) -> tuple[Enforcer, Signature]:
    for _ in range(_READ_ATTEMPTS):
        before = sources.signature()
        file_rules = read_rules(sources.files())
        enforcer = new_enforcer(sources)
        enforcer.load_rules(force_reload=True)
        if sources.signature() == before:
            defaults = {name: rule.check for name, rule in enforcer.registered_rules.items()}
            check_references(file_rules, defaults)
            # From now on the rules change only when this engine builds a new enforcer.
            enforcer.use_conf = False
            return enforcer, before
    raise PolicyFileError(None, None, f"{_describe(sources)} kept changing while being read")


def new_enforcer(sources: PolicySources) -> Enforcer:
    """An oslo.policy enforcer with Glance's defaults, reading ``sources`` when it loads.

    Its configuration is private (``enforce_new_defaults``: Glance's current defaults
    alone). Without a policy file it reads an empty one, so that oslo.policy still applies
    the registered defaults rather than searching /etc for a ``policy.yaml``.
    """
    conf = cfg.ConfigOpts()
    conf([], project="imgworker", default_config_files=[], default_config_dirs=[])
    policy_file = str(sources.file) if sources.file is not None else os.devnull
    enforcer = Enforcer(conf, policy_file=policy_file, use_conf=True, overwrite=True)
    conf.set_override("policy_dirs", [str(d) for d in sources.dirs], "oslo_policy")
    conf.set_override("enforce_new_defaults", True, "oslo_policy")
    enforcer.suppress_default_change_warnings = True
    enforcer.register_defaults(list_rules())
    return enforcer


def _describe(sources: PolicySources) -> str:
    named = [str(p) for p in (sources.file, *sources.dirs) if p is not None]
    return ", ".join(named) or "the defaults"


def get_enforcer() -> Enforcer:
    """The ``oslo.policy.enforcer`` entry point: the rules ``imgworker api`` would apply,
    from the configuration ``$IMGWORKER_CONFIG`` names (oslopolicy-validator and friends)."""
    from worker.config.settings import load_settings

    api = load_settings().api
    return new_enforcer(PolicySources.of(api.policy_file, api.policy_dirs))
