"""Tasks through the API: ``GET /v2/tasks/{id}``, ``GET /v2/images/{id}/tasks``."""

from __future__ import annotations

from aiohttp import web

from flows.errors import NotFound
from worker.api.common import is_uuid, json_response, visible_image
from worker.api.errors import not_found
from worker.api.policy import Hidden, enforce
from worker.api.state import state_of
from worker.api.views import task_view


async def show_task(request: web.Request) -> web.Response:
    """One task, to whom ``tasks_api_access`` admits on the task's project (others: 404)."""
    state = state_of(request)
    task_id = request.match_info["task_id"]
    missing = not_found(f"Task with the given id {task_id} not found")
    if not is_uuid(task_id):
        raise missing
    try:
        task = await state.records.tasks.get(task_id)
    except NotFound:
        raise missing from None
    hidden = Hidden("tasks_api_access", str(missing))
    enforce(request, "tasks_api_access", {"project_id": task.owner}, hidden)
    return json_response(task_view(task))


async def image_tasks(request: web.Request) -> web.Response:
    """The tasks of an image, oldest first, to whoever may see the image (as Glance)."""
    state, _identity, image = await visible_image(request)
    tasks = await state.records.tasks.list_for_image(image.id)
    return json_response({"tasks": [task_view(task) for task in tasks]})


ROUTES = [
    web.get("/v2/tasks/{task_id}", show_task),
    web.get("/v2/images/{image_id}/tasks", image_tasks),
]
