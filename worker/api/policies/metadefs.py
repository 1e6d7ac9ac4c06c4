"""The metadata definitions API (glance/policies/metadef.py): reads for readers of the
namespace's project or of a public one, writes through ``metadef_admin`` (the guide's 1.1.7).
"""

from __future__ import annotations

from oslo_policy.policy import DocumentedRuleDefault, RuleDefault

from worker.api.policies.base import PROJECT
from worker.api.policies.checks import (
    ADMIN,
    ADMIN_OR_PROJECT_READER,
    ADMIN_OR_READER_OF_PUBLIC_NAMESPACE,
    METADEF_ADMIN,
)

NAMESPACES = "/v2/metadefs/namespaces"
NAMESPACE = f"{NAMESPACES}/{{namespace_name}}"

#: name, default, what it allows, method, path.
_RULES: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "get_metadef_namespace",
        ADMIN_OR_READER_OF_PUBLIC_NAMESPACE,
        "Show a namespace.",
        "GET",
        NAMESPACE,
    ),
    ("get_metadef_namespaces", ADMIN_OR_PROJECT_READER, "List namespaces.", "GET", NAMESPACES),
    ("modify_metadef_namespace", METADEF_ADMIN, "Change a namespace.", "PUT", NAMESPACE),
    ("add_metadef_namespace", METADEF_ADMIN, "Create a namespace.", "POST", NAMESPACES),
    (
        "delete_metadef_namespace",
        METADEF_ADMIN,
        "Delete a namespace or all its objects, properties or tags.",
        "DELETE",
        NAMESPACE,
    ),
    (
        "get_metadef_object",
        ADMIN_OR_READER_OF_PUBLIC_NAMESPACE,
        "Show an object.",
        "GET",
        f"{NAMESPACE}/objects/{{object_name}}",
    ),
    (
        "get_metadef_objects",
        ADMIN_OR_READER_OF_PUBLIC_NAMESPACE,
        "List objects.",
        "GET",
        f"{NAMESPACE}/objects",
    ),
    (
        "modify_metadef_object",
        METADEF_ADMIN,
        "Change an object.",
        "PUT",
        f"{NAMESPACE}/objects/{{object_name}}",
    ),
    ("add_metadef_object", METADEF_ADMIN, "Create an object.", "POST", f"{NAMESPACE}/objects"),
    (
        "delete_metadef_object",
        METADEF_ADMIN,
        "Delete an object.",
        "DELETE",
        f"{NAMESPACE}/objects/{{object_name}}",
    ),
    (
        "list_metadef_resource_types",
        ADMIN_OR_READER_OF_PUBLIC_NAMESPACE,
        "List resource types.",
        "GET",
        "/v2/metadefs/resource_types",
    ),
    (
        "get_metadef_resource_type",
        ADMIN_OR_READER_OF_PUBLIC_NAMESPACE,
        "List a namespace's resource type associations.",
        "GET",
        f"{NAMESPACE}/resource_types",
    ),
    (
        "add_metadef_resource_type_association",
        METADEF_ADMIN,
        "Associate a resource type.",
        "POST",
        f"{NAMESPACE}/resource_types",
    ),
    (
        "remove_metadef_resource_type_association",
        METADEF_ADMIN,
        "Remove a resource type association.",
        "DELETE",
        f"{NAMESPACE}/resource_types/{{name}}",
    ),
    (
        "get_metadef_property",
        ADMIN_OR_READER_OF_PUBLIC_NAMESPACE,
        "Show a property.",
        "GET",
        f"{NAMESPACE}/properties/{{property_name}}",
    ),
    (
        "get_metadef_properties",
        ADMIN_OR_READER_OF_PUBLIC_NAMESPACE,
        "List properties.",
        "GET",
        f"{NAMESPACE}/properties",
    ),
    (
        "modify_metadef_property",
        METADEF_ADMIN,
        "Change a property.",
        "PUT",
        f"{NAMESPACE}/properties/{{property_name}}",
    ),
    (
        "add_metadef_property",
        METADEF_ADMIN,
        "Create a property.",
        "POST",
        f"{NAMESPACE}/properties",
    ),
    (
        "remove_metadef_property",
        METADEF_ADMIN,
        "Delete a property.",
        "DELETE",
        f"{NAMESPACE}/properties/{{property_name}}",
    ),
    (
        "get_metadef_tag",
        ADMIN_OR_READER_OF_PUBLIC_NAMESPACE,
        "Show a tag.",
        "GET",
        f"{NAMESPACE}/tags/{{tag_name}}",
    ),
    (
        "get_metadef_tags",
        ADMIN_OR_READER_OF_PUBLIC_NAMESPACE,
        "List tags.",
        "GET",
        f"{NAMESPACE}/tags",
    ),
    ("modify_metadef_tag", METADEF_ADMIN, "Rename a tag.", "PUT", f"{NAMESPACE}/tags/{{tag_name}}"),
    ("add_metadef_tag", METADEF_ADMIN, "Create a tag.", "POST", f"{NAMESPACE}/tags/{{tag_name}}"),
    (
        "add_metadef_tags",
        METADEF_ADMIN,
        "Create (or replace) several tags.",
        "POST",
        f"{NAMESPACE}/tags",
    ),
    (
        "delete_metadef_tag",
        METADEF_ADMIN,
        "Delete a tag.",
        "DELETE",
        f"{NAMESPACE}/tags/{{tag_name}}",
    ),
    (
        "delete_metadef_tags",
        METADEF_ADMIN,
        "Delete all tags of a namespace.",
        "DELETE",
        f"{NAMESPACE}/tags",
    ),
)


def rules() -> list[RuleDefault]:
    """``metadef_default``, ``metadef_admin`` and the rule of every metadef operation."""
    return [
        RuleDefault("metadef_default", "", description="The guide's rule for metadef reads."),
        RuleDefault("metadef_admin", ADMIN, description="Who may write metadefs."),
        *(
            DocumentedRuleDefault(
                name, check, description, [{"method": method, "path": path}], scope_types=PROJECT
            )
            for name, check, description, method, path in _RULES
        ),
    ]
