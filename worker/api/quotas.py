"""The limits the API checks, where Glance checks them, answering as Glance does.

Keystone's unified limits (``[quotas] use_keystone_limits``), charged to the caller's
project as Glance charges them (``req.context.owner``), decided in the transaction that
admits the work (:func:`worker.db.usage.admit`), before the answer — never after a 202:

- ``POST /v2/images``: ``image_count_total`` +1.
- ``PUT .../stage`` and the staging of ``PUT .../file``: ``image_stage_total`` + the size,
  ``image_count_uploading`` +1.
- ``POST .../import``, glance-direct: ``image_size_total`` + staged size × target stores.
- web-download: ``image_count_uploading`` +1; ``image_stage_total`` and
  ``image_size_total`` +0 (the size is not known yet: refused only when already over).
- copy-image: ``image_count_uploading`` +1, ``image_stage_total`` + the size,
  ``image_size_total`` + size × target stores.

(+1 only when the image does not count yet; sizes in MiB, rounded down.) A refusal is 413
with Glance's body. The per-image limits of ``[api]`` (locations here; properties, tags and
members where those are written) answer 413 with Glance's messages too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from oslo_limit.exception import OverLimitInfo, ProjectOverLimit
from sqlalchemy.ext.asyncio import AsyncSession

from flows.errors import OverLimit
from flows.records import ImageRecord
from flows.request import COPY_IMAGE, GLANCE_DIRECT, ImportRequest
from flows.states import LocationStatus
from flows.targets import resolve_targets
from worker.api.limits import LimitSource
from worker.config.settings import ApiSettings
from worker.db.usage import Admission, Charge, Judge, MiB, Resource, admit, is_busy
from worker.tasks.services import Records
from worker.tasks.submission import SubmissionRules

#: How Glance words a 413 for a unified limit (``exception.LimitExceeded``), before
#: oslo.limit's own text.
OVER_LIMIT = (
    "The request returned a 413 Request Entity Too Large. This generally means that rate "
    "limiting or a quota threshold was breached.\n\nThe response body:\n"
)


def judge_by(limits: Mapping[Resource, int]) -> Judge:
    """Keystone's rule: over when usage + delta > limit, -1 unlimited; refused with
    oslo.limit's own words for every resource over, in name order (as its flat model)."""

    def judge(charge: Charge, usage: Mapping[Resource, int]) -> None:
        over = [
            OverLimitInfo(resource, limits[resource], usage[resource], delta)
            for resource, delta in sorted(charge.deltas.items())
            if limits[resource] >= 0 and usage[resource] + delta > limits[resource]
        ]
        if over:
            raise OverLimit(OVER_LIMIT + str(ProjectOverLimit(charge.project_id, over)))

    return judge


def location_limit_reached(attempted: int, maximum: int) -> OverLimit:
    """Glance's ``ImageLocationLimitExceeded``."""
    return OverLimit(
        "The limit has been exceeded on the number of allowed image locations. "
        f"Attempted: {attempted}, Maximum: {maximum}"
    )


@dataclass(frozen=True)
class Quotas:
    """The API's checks: ``source`` is None when unified limits are off."""

    source: LimitSource | None
    records: Records
    api: ApiSettings

    async def for_create(self, project_id: str | None) -> Admission | None:
        """``POST /v2/images``: one more image."""
        judge = await self._judge(project_id)
        if judge is None or project_id is None:
            return None
        charge = Charge(project_id, {Resource.IMAGE_COUNT_TOTAL: 1})

        async def admission(
            session: AsyncSession, _image: ImageRecord | None, _task: str | None
        ) -> None:
            await admit(session, charge, judge)

        return admission

    async def for_stage(self, project_id: str | None) -> Admission | None:
        """Staging (``PUT .../stage``, a classic upload): the staged bytes, one more upload."""
        judge = await self._judge(project_id)
        if judge is None or project_id is None:
            return None

        async def admission(
            session: AsyncSession, image: ImageRecord | None, _task: str | None
        ) -> None:
            assert image is not None, "staging is of an existing image"
            await admit(session, _stage_charge(project_id, image, image.size or 0), judge)

        return admission

    async def check_stage(self, project_id: str | None, image: ImageRecord, size: int) -> None:
        """Refuse a stage at once, before its bytes move, when it cannot fit now.

        Not serialised (the bytes are not here yet): the decision that counts is the one
        :meth:`for_stage` takes once they are.
        """
        judge = await self._judge(project_id)
        if judge is not None and project_id is not None:
            await self.records.usage.check(_stage_charge(project_id, image, size), judge)

    async def for_import(
        self, project_id: str | None, request: ImportRequest, rules: SubmissionRules
    ) -> Admission | None:
        """``POST .../import``: what the import will upload, stage and store (see above),
        and the image's location limit."""
        judge = await self._judge(project_id)
        locations = self.api.image_location_quota

        async def admission(
            session: AsyncSession, image: ImageRecord | None, task_id: str | None
        ) -> None:
            assert image is not None, "an import is of an existing image"
            targets = resolve_targets(request, image, rules.configured_stores, rules.default_store)
            held = sum(1 for loc in image.locations if loc.status != LocationStatus.DELETED)
            if 0 <= locations < held + len(targets):
                raise location_limit_reached(held + len(targets), locations)
            if judge is not None and project_id is not None:
                charge = _import_charge(project_id, image, request, targets)
                stored = {Resource.IMAGE_SIZE_TOTAL: (image.size or 0) * len(targets)}
                await admit(session, charge, judge, task_id=task_id, holds=stored)

        return admission

    async def usage(self, project_id: str | None) -> dict[str, dict[str, int]]:
        """``GET /v2/info/usage``: each resource's limit and usage (empty when off)."""
        if self.source is None or project_id is None:
            return {}
        limits = await self.source.limits(project_id)
        counted = await self.records.usage.count(project_id, list(Resource))
        return {r.value: {"limit": limits[r], "usage": counted[r]} for r in Resource}

    async def _judge(self, project_id: str | None) -> Judge | None:
        if self.source is None or project_id is None:
            return None
        return judge_by(await self.source.limits(project_id))


def _stage_charge(project_id: str, image: ImageRecord, size: int) -> Charge:
    counted = is_busy(image)
    return Charge(
        project_id,
        {
            Resource.IMAGE_STAGE_TOTAL: 0 if counted else size // MiB,
            Resource.IMAGE_COUNT_UPLOADING: 0 if counted else 1,
        },
    )


def _import_charge(
    project_id: str, image: ImageRecord, request: ImportRequest, targets: list[str]
) -> Charge:
    size = image.size or 0
    if request.method == GLANCE_DIRECT:
        return Charge(project_id, {Resource.IMAGE_SIZE_TOTAL: size * len(targets) // MiB})
    counted = is_busy(image)
    copying = request.method == COPY_IMAGE
    return Charge(
        project_id,
        {
            Resource.IMAGE_COUNT_UPLOADING: 0 if counted else 1,
            Resource.IMAGE_STAGE_TOTAL: size // MiB if copying and not counted else 0,
            Resource.IMAGE_SIZE_TOTAL: size * len(targets) // MiB if copying else 0,
        },
    )
