"""The base rules, discovery and tasks (glance/policies/{base,discovery,tasks}.py)."""

from __future__ import annotations

from oslo_policy.policy import DocumentedRuleDefault, RuleDefault

from worker.api.policies.checks import ADMIN_OR_PROJECT_READER, ADMIN_OR_SERVICE

PROJECT = ["project"]


def rules() -> list[RuleDefault]:
    """``default``, ``context_is_admin``, ``service_api``, discovery and the tasks API."""
    return [
        RuleDefault("default", "", description="What a rule nobody defined allows: anyone."),
        RuleDefault(
            "context_is_admin",
            "role:admin",
            description="Who is an admin: sees every image and namespace, passes admin rules.",
        ),
        RuleDefault(
            "service_api",
            "role:service or role:admin",
            description="Other OpenStack services calling on a user's behalf.",
        ),
        DocumentedRuleDefault(
            "stores_info_detail",
            ADMIN_OR_SERVICE,
            "Each store's type and settings.",
            [{"path": "/v2/info/stores/detail", "method": "GET"}],
            scope_types=PROJECT,
        ),
        DocumentedRuleDefault(
            "tasks_api_access",
            ADMIN_OR_PROJECT_READER,
            "The tasks API; its target is the task's project. Glance 33 lets admins alone "
            "(rule:context_is_admin); imgworker lets a project read its own import tasks.",
            [
                {"path": "/v2/tasks/{task_id}", "method": "GET"},
                {"path": "/v2/tasks", "method": "GET"},
                {"path": "/v2/tasks", "method": "POST"},
            ],
            scope_types=PROJECT,
        ),
        *(
            DocumentedRuleDefault(
                name,
                "rule:default",
                "Kept for Glance's policy files; the API checks tasks_api_access.",
                [{"path": path, "method": method}],
                scope_types=PROJECT,
            )
            for name, method, path in (
                ("get_task", "GET", "/v2/tasks/{task_id}"),
                ("get_tasks", "GET", "/v2/tasks"),
                ("add_task", "POST", "/v2/tasks"),
                ("modify_task", "DELETE", "/v2/tasks/{task_id}"),
            )
        ),
    ]
