"""Images, their locations, members and actions (glance/policies/image.py).

Two defaults keep what imgworker promised before it read policy files, where Glance 33 is
stricter: ``copy_image`` and ``delete_image_location`` admit the image's owner (a member of
its project) as well as admins — the guide's 2.3 and 2.4. Write ``rule:context_is_admin``
for them in a policy file to get Glance's.
"""

from __future__ import annotations

from oslo_policy.policy import DocumentedRuleDefault

from worker.api.policies.base import PROJECT
from worker.api.policies.checks import (
    ADMIN,
    ADMIN_OR_MEMBER_WHO_SEES_IMAGE,
    ADMIN_OR_PROJECT_MEMBER,
    ADMIN_OR_PROJECT_MEMBER_OF_OWNER,
    ADMIN_OR_PROJECT_READER,
    ADMIN_OR_READER_OF_OWNER_OR_MEMBER,
    ADMIN_OR_READER_WHO_SEES_IMAGE,
    ADMIN_OR_SHARED_MEMBER,
    SERVICE,
    SERVICE_OR_PROJECT_MEMBER_OF_OWNER,
)

IMAGE = "/v2/images/{image_id}"
MEMBER = "/v2/images/{image_id}/members/{member_id}"

#: name, check string, what it allows, (method, path) of each operation.
_RULES: tuple[tuple[str, str, str, tuple[tuple[str, str], ...]], ...] = (
    ("add_image", ADMIN_OR_PROJECT_MEMBER_OF_OWNER, "Create an image.", (("POST", "/v2/images"),)),
    ("delete_image", ADMIN_OR_PROJECT_MEMBER, "Delete an image.", (("DELETE", IMAGE),)),
    ("get_image", ADMIN_OR_READER_WHO_SEES_IMAGE, "Show an image.", (("GET", IMAGE),)),
    ("get_images", ADMIN_OR_PROJECT_READER, "List images.", (("GET", "/v2/images"),)),
    (
        "modify_image",
        ADMIN_OR_PROJECT_MEMBER,
        "Change an image: attributes, tags, staged data, an import into it.",
        (("PATCH", IMAGE), ("PUT", f"{IMAGE}/tags/{{tag}}"), ("PUT", f"{IMAGE}/stage")),
    ),
    ("publicize_image", ADMIN, "Make an image public.", (("PATCH", IMAGE),)),
    ("communitize_image", ADMIN_OR_PROJECT_MEMBER, "Make an image community.", (("PATCH", IMAGE),)),
    (
        "download_image",
        ADMIN_OR_MEMBER_WHO_SEES_IMAGE,
        "Download image data.",
        (("GET", f"{IMAGE}/file"),),
    ),
    (
        "download_from_store",
        ADMIN_OR_MEMBER_WHO_SEES_IMAGE,
        "Download image data from a named store.",
        (("GET", f"{IMAGE}/file"),),
    ),
    ("upload_image", ADMIN_OR_PROJECT_MEMBER, "Upload image data.", (("PUT", f"{IMAGE}/file"),)),
    (
        "delete_image_location",
        ADMIN_OR_PROJECT_MEMBER,
        "Remove a location, or an image's copy in one store (Glance 33: admin only).",
        (("PATCH", IMAGE), ("DELETE", "/v2/stores/{store_id}/{image_id}")),
    ),
    ("get_image_location", ADMIN_OR_PROJECT_READER, "See an image's locations.", (("GET", IMAGE),)),
    (
        "set_image_location",
        ADMIN_OR_PROJECT_MEMBER,
        "Set an image's locations.",
        (("PATCH", IMAGE),),
    ),
    (
        "add_image_location",
        SERVICE_OR_PROJECT_MEMBER_OF_OWNER,
        "Add a location (API 2.17).",
        (("POST", f"{IMAGE}/locations"),),
    ),
    (
        "fetch_image_location",
        SERVICE,
        "List locations (API 2.17).",
        (("GET", f"{IMAGE}/locations"),),
    ),
    (
        "add_member",
        ADMIN_OR_PROJECT_MEMBER,
        "Share an image with a project.",
        (("POST", f"{IMAGE}/members"),),
    ),
    (
        "delete_member",
        ADMIN_OR_PROJECT_MEMBER,
        "Stop sharing an image with a project.",
        (("DELETE", MEMBER),),
    ),
    ("get_member", ADMIN_OR_READER_OF_OWNER_OR_MEMBER, "Show one member.", (("GET", MEMBER),)),
    (
        "get_members",
        ADMIN_OR_READER_OF_OWNER_OR_MEMBER,
        "List members.",
        (("GET", f"{IMAGE}/members"),),
    ),
    (
        "modify_member",
        ADMIN_OR_SHARED_MEMBER,
        "Accept or reject a shared image.",
        (("PUT", MEMBER),),
    ),
    (
        "deactivate",
        ADMIN_OR_PROJECT_MEMBER,
        "Deactivate an image.",
        (("POST", f"{IMAGE}/actions/deactivate"),),
    ),
    (
        "reactivate",
        ADMIN_OR_PROJECT_MEMBER,
        "Reactivate an image.",
        (("POST", f"{IMAGE}/actions/reactivate"),),
    ),
    (
        "copy_image",
        ADMIN_OR_PROJECT_MEMBER,
        "Copy an image's data to more stores: its owner or an admin, as the guide's 2.3 says "
        "(Glance 33: admin only).",
        (("POST", f"{IMAGE}/import"),),
    ),
)


def rules() -> list[DocumentedRuleDefault]:
    """Every image rule Glance registers, with its current default."""
    return [
        DocumentedRuleDefault(
            name,
            check,
            description,
            [{"method": method, "path": path} for method, path in operations],
            scope_types=PROJECT,
        )
        for name, check, description, operations in _RULES
    ]
