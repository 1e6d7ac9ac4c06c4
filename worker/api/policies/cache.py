"""The image cache's rules (glance/policies/cache.py): the cache API of the guide's 1.1.5."""

from __future__ import annotations

from oslo_policy.policy import DocumentedRuleDefault, RuleDefault

from worker.api.policies.base import PROJECT
from worker.api.policies.checks import ADMIN


def rules() -> list[RuleDefault]:
    """``cache_*``, ``list_cached_nodes`` and the legacy ``manage_image_cache``."""
    operations = (
        ("cache_image", "Queue an image for caching.", [("PUT", "/v2/cache/{image_id}")]),
        ("cache_list", "List the cached and queued images.", [("GET", "/v2/cache")]),
        (
            "cache_delete",
            "Remove images from the cache or its queue.",
            [("DELETE", "/v2/cache"), ("DELETE", "/v2/cache/{image_id}")],
        ),
        ("cache_clean", "Remove invalid and stalled cache entries.", [("POST", "/v2/cache/clean")]),
        ("cache_prune", "Shrink the cache to its size limit.", [("POST", "/v2/cache/prune")]),
        (
            "list_cached_nodes",
            "Which API nodes hold an image in their cache.",
            [("GET", "/v2/cache/nodes/{image_id}")],
        ),
    )
    return [
        RuleDefault("manage_image_cache", ADMIN, description="The legacy cache-manage rule."),
        *(
            DocumentedRuleDefault(
                name,
                ADMIN,
                description,
                [{"path": path, "method": method} for method, path in paths],
                scope_types=PROJECT,
            )
            for name, description, paths in operations
        ),
    ]
