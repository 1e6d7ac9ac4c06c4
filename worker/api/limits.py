"""A project's limits, read from Keystone's unified limits by oslo.limit and cached.

oslo.limit is how Glance reads them; it is used here the same way (its ``[oslo_limit]``
options, its endpoint discovery, its Keystone calls), with one change measured to matter:
Glance builds an ``Enforcer`` for every check, and each one asks Keystone for the
enforcement model, the service, the endpoint, the project's limits and the registered
limits — about 1.6 s a check against the test Keystone on this machine (docs/quotas.md), on
every create, stage and import. Here one ``Enforcer`` (model and endpoint found once) is kept,
and what it reads is kept ``[quotas] cache_seconds``: the registered limits, and each
project's own limits, one Keystone call each when they are due. A limit changed in Keystone
therefore applies at most ``cache_seconds`` later, in each API process.

A project's limit of a resource is its project limit, else the registered limit, else 0 —
oslo.limit's rule, so a resource with no registered limit allows nothing, as in Glance.
oslo.limit's calls block: they run in a thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from flows.errors import TransientError
from worker.config.settings import KeystoneSettings, QuotaSettings
from worker.db.usage import Resource

log = logging.getLogger(__name__)

#: Projects whose limits are kept at most (the least recently used go first).
MAX_PROJECTS = 10_000
#: oslo.limit's option group.
GROUP = "oslo_limit"
#: What oslo.limit reads: (resource name, limit) pairs.
Pairs = list[tuple[str, int]]


class LimitsUnavailable(TransientError):
    """Keystone could not be asked for the limits now (down, refusing, misconfigured)."""

    reason = "limits_unavailable"


class LimitSource(Protocol):
    """Where the API reads a project's limits."""

    async def limits(self, project_id: str) -> Mapping[Resource, int]:
        """Each resource's limit for ``project_id`` (-1: unlimited)."""
        ...


class Enforcer(Protocol):
    """The two reads of oslo.limit's ``Enforcer`` used here."""

    def get_registered_limits(self, resources_to_check: Any) -> list[tuple[str, int]]:
        """Every registered limit of the endpoint's service (``None``: all)."""
        ...

    def get_project_limits(
        self, project_id: str | None, resources_to_check: Any
    ) -> list[tuple[str, int]]:
        """Every project limit of ``project_id`` (``None``: all)."""
        ...


@dataclass(frozen=True, slots=True)
class _Kept:
    until: float
    limits: Mapping[str, int]


class KeystoneLimits:
    """The limits Keystone holds for each project, kept for ``cache_seconds``."""

    def __init__(
        self,
        cache_seconds: float,
        make_enforcer: Callable[[], Enforcer],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = cache_seconds
        self._make_enforcer = make_enforcer
        self._clock = clock
        self._enforcer: Enforcer | None = None
        self._registered: _Kept | None = None
        self._projects: OrderedDict[str, _Kept] = OrderedDict()
        self._reading = asyncio.Lock()

    async def warm(self) -> None:
        """Find the endpoint and read the registered limits now (the API's start), so the
        first request does not wait for it; a failure is logged and tried again on use."""
        try:
            now = self._clock()
            pairs = await self._ask(lambda e: e.get_registered_limits(None))
            self._registered = _Kept(now + self._ttl, dict(pairs))
            log.info("unified limits registered for this endpoint: %s", dict(pairs))
        except LimitsUnavailable:
            log.warning("the unified limits could not be read at start; trying on first use")

    async def limits(self, project_id: str) -> Mapping[Resource, int]:
        """Each resource's limit for ``project_id``: its project limit, else the registered
        one, else 0; :class:`LimitsUnavailable` when they are due and Keystone fails."""
        kept = self._fresh(project_id)
        if kept is None:
            async with self._reading:  # one read at a time: a burst asks Keystone once
                kept = self._fresh(project_id) or await self._read(project_id)
        registered = self._registered.limits if self._registered else {}
        return {r: kept.limits.get(r, registered.get(r, 0)) for r in Resource}

    def _fresh(self, project_id: str) -> _Kept | None:
        kept = self._projects.get(project_id)
        now = self._clock()
        if kept is None or kept.until <= now:
            return None
        if self._registered is None or self._registered.until <= now:
            return None
        self._projects.move_to_end(project_id)
        return kept

    async def _read(self, project_id: str) -> _Kept:
        now = self._clock()
        if self._registered is None or self._registered.until <= now:
            pairs = await self._ask(lambda e: e.get_registered_limits(None))
            self._registered = _Kept(now + self._ttl, dict(pairs))
        pairs = await self._ask(lambda e: e.get_project_limits(project_id, None))
        kept = _Kept(now + self._ttl, dict(pairs))
        self._projects[project_id] = kept
        self._projects.move_to_end(project_id)
        while len(self._projects) > MAX_PROJECTS:
            self._projects.popitem(last=False)
        return kept

    async def _ask(self, read: Callable[[Enforcer], Pairs]) -> Pairs:
        def call() -> Pairs:
            if self._enforcer is None:
                self._enforcer = self._make_enforcer()
            return read(self._enforcer)

        try:
            return await asyncio.to_thread(call)
        except Exception as exc:
            # Found again next time: the endpoint may have moved, the service come back.
            self._enforcer = None
            log.error("reading the unified limits from Keystone failed: %s", exc)
            raise LimitsUnavailable(
                "The project's limits cannot be read from the identity service (Keystone) "
                "now; try again shortly."
            ) from exc


def oslo_limit_enforcer(quotas: QuotaSettings, keystone: KeystoneSettings) -> Enforcer:
    """oslo.limit's ``Enforcer`` for these settings (blocking: Keystone is asked at once).

    oslo.limit reads its ``[oslo_limit]`` options from oslo.config's global ``CONF``: they
    are set here from ``[quotas]`` and ``[keystone]`` (one configuration per process).
    """
    from oslo_limit import limit

    _configure(limit.CONF, quotas, keystone)
    return limit.Enforcer(_no_usage, cache=False)


def _no_usage(_project_id: str | None, resources: Any) -> dict[str, int]:
    """oslo.limit's usage callback: never called (usage is counted by the records)."""
    return dict.fromkeys(resources, 0)


def _configure(conf: Any, quotas: QuotaSettings, keystone: KeystoneSettings) -> None:
    from keystoneauth1 import loading

    plugin = "v3applicationcredential" if keystone.application_credential_id else "password"
    conf.register_opts(loading.get_auth_plugin_conf_options(plugin), group=GROUP)
    values: dict[str, Any] = {
        "auth_type": plugin,
        "auth_url": keystone.auth_url,
        "timeout": keystone.request_timeout_seconds,
        "endpoint_service_type": quotas.endpoint_service_type or None,
        "endpoint_service_name": quotas.endpoint_service_name or None,
        "endpoint_region_name": quotas.endpoint_region_name or keystone.region_name or None,
        "endpoint_interface": quotas.endpoint_interface,
        "endpoint_id": quotas.endpoint_id or None,
    }
    if keystone.application_credential_secret is not None:
        values["application_credential_id"] = keystone.application_credential_id
        values["application_credential_secret"] = (
            keystone.application_credential_secret.get_secret_value()
        )
    else:
        assert keystone.password is not None, "settings require a password with a username"
        values.update(
            username=keystone.username,
            password=keystone.password.get_secret_value(),
            user_domain_name=keystone.user_domain_name,
        )
        if quotas.system_scope:
            values["system_scope"] = quotas.system_scope
        else:
            values.update(
                project_name=keystone.project_name,
                project_domain_name=keystone.project_domain_name,
            )
    for key, value in values.items():
        conf.set_override(key, value, group=GROUP)
