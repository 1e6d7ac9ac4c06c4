"""Who may do what: Glance's default policies (admin, member, reader) and ownership.

Readers list, show and download; members create, change, import and delete what their
project owns; admins do everything. An image the caller may not see answers 404, exactly as
Glance hides it; one they see but may not change answers 403.
"""

from __future__ import annotations

from flows.records import ImageRecord
from worker.api.errors import ApiError, forbidden
from worker.api.identity import Identity


def require_reader(identity: Identity) -> None:
    """Refuse callers with none of the default roles."""
    if not identity.can_read:
        raise forbidden("You are not authorized to read images: no reader, member or admin role.")


def require_writer(identity: Identity, action: str) -> None:
    """Refuse readers (and role-less callers) anything that changes the catalogue."""
    if not identity.can_write:
        raise forbidden(f"You are not authorized to {action}: it needs the member or admin role.")


def require_owner(identity: Identity, image: ImageRecord, action: str) -> None:
    """Only the owning project (with a member role) or an admin may ``action`` the image."""
    require_writer(identity, action)
    if identity.is_admin or (image.owner is not None and image.owner == identity.project_id):
        return
    raise forbidden(f"You are not authorized to {action} image {image.id}: it is not yours.")


def require_admin(identity: Identity, action: str) -> None:
    """Admin-only operations."""
    if not identity.is_admin:
        raise ApiError(403, f"You are not authorized to {action}: it needs the admin role.")
