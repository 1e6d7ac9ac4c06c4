"""The check strings Glance's default rules are written with (glance/policies/base.py).

``%(project_id)s`` and the other ``%(...)s`` names are keys of the target the API passes:
the resource's owner, its visibility, the caller's membership of a shared image.
"""

from __future__ import annotations

ADMIN = "rule:context_is_admin"
SERVICE = "rule:service_api"
PROJECT_MEMBER = "role:member and project_id:%(project_id)s"
PROJECT_READER = "role:reader and project_id:%(project_id)s"
IMAGE_MEMBER = "project_id:%(member_id)s"
PUBLIC = "'public':%(visibility)s"
#: The image is the caller's, shared with the caller, or public, community or shared.
_SEEN = (
    f"project_id:%(project_id)s or {IMAGE_MEMBER} or 'community':%(visibility)s "
    f"or {PUBLIC} or 'shared':%(visibility)s"
)

ADMIN_OR_PROJECT_MEMBER = f"{ADMIN} or ({PROJECT_MEMBER})"
ADMIN_OR_PROJECT_READER = f"{ADMIN} or ({PROJECT_READER})"
ADMIN_OR_READER_WHO_SEES_IMAGE = f"{ADMIN} or (role:reader and ({_SEEN}))"
ADMIN_OR_MEMBER_WHO_SEES_IMAGE = f"{ADMIN} or (role:member and ({_SEEN}))"
ADMIN_OR_PROJECT_MEMBER_OF_OWNER = f"{ADMIN} or ({PROJECT_MEMBER} and project_id:%(owner)s)"
ADMIN_OR_SHARED_MEMBER = f"{ADMIN} or (role:member and {IMAGE_MEMBER})"
#: Glance writes it without parentheses, so ``and`` binds first; kept as Glance has it.
ADMIN_OR_READER_OF_OWNER_OR_MEMBER = (
    f"{ADMIN} or role:reader and (project_id:%(project_id)s or {IMAGE_MEMBER})"
)
SERVICE_OR_PROJECT_MEMBER_OF_OWNER = f"{SERVICE} or ({PROJECT_MEMBER} and project_id:%(owner)s)"
ADMIN_OR_SERVICE = f"{ADMIN} or {SERVICE}"
ADMIN_OR_READER_OF_PUBLIC_NAMESPACE = (
    f"{ADMIN} or (role:reader and (project_id:%(project_id)s or {PUBLIC}))"
)
METADEF_ADMIN = "rule:metadef_admin"
