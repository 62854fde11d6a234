"""/api/v1/projects: create, list, get, update, delete; owners checked against the users service."""

from __future__ import annotations

from atlas_common.current import connection
from atlas_common.errors import ApiError
from atlas_common.routing import Api
from atlas_common.schemas import ListQuery
from atlas_common.table import Table
from flask import Response, current_app

from projects.schemas import Project, ProjectCreate, ProjectPage, ProjectUpdate
from projects.users_client import UsersClient

OWNER_CHECK_HEADER = "X-Owner-Check"

api = Api(
    "projects",
    "/api/v1/projects",
    tag="projects",
    read_scope="projects:read",
    write_scope="projects:write",
    response_headers={
        OWNER_CHECK_HEADER: "`enabled`: owner_id is checked against the users service; "
        "`disabled`: USERS_SERVICE_URL is unset and owner_id is stored as given",
    },
)
projects = Table("projects", ("name", "description", "owner_id"))


def _users() -> UsersClient | None:
    return current_app.extensions["projects.users"]


@api.blueprint.after_request
def _say_whether_owners_are_checked(response: Response) -> Response:
    response.headers[OWNER_CHECK_HEADER] = "enabled" if _users() is not None else "disabled"
    return response


def _check_owner(owner_id: int) -> None:
    users = _users()
    if users is not None:
        users.ensure_user_exists(owner_id)


def _not_found(project_id: int) -> ApiError:
    return ApiError(404, "not_found", f"project {project_id} does not exist")


# A valid body can still name an owner that does not exist: users_client.py answers 422 owner_not_found. The
# owner check calls users with the caller's token: without users:read there, users refuses and so does this.
_OWNER_NOTES = {
    422: "or `owner_not_found`: no user of the users service has this owner_id (with X-Owner-Check: enabled)",
    403: "or the owner check needs `users:read` too and the token lacks it (with X-Owner-Check: enabled)",
}


@api.operation(
    "POST",
    "",
    summary="Create a project",
    status=201,
    body=ProjectCreate,
    response=Project,
    errors=(502, 504),
    notes=_OWNER_NOTES,
)
def create_project(body: ProjectCreate) -> Project:
    _check_owner(body.owner_id)
    with connection() as conn:
        return Project(**projects.create(conn, body.model_dump()))


@api.operation("GET", "", summary="List projects by id, one page at a time", query=ListQuery, response=ProjectPage)
def list_projects(query: ListQuery) -> ProjectPage:
    with connection() as conn:
        rows, total = projects.page(conn, query.limit, query.offset)
    return ProjectPage(items=[Project(**row) for row in rows], limit=query.limit, offset=query.offset, total=total)


@api.operation("GET", "/<id:project_id>", summary="Get one project", response=Project, errors=(404,))
def get_project(project_id: int) -> Project:
    with connection() as conn:
        row = projects.get(conn, project_id)
    if row is None:
        raise _not_found(project_id)
    return Project(**row)


@api.operation(
    "PATCH",
    "/<id:project_id>",
    summary="Change a project",
    body=ProjectUpdate,
    response=Project,
    errors=(404, 502, 504),
    notes=_OWNER_NOTES,
)
def update_project(project_id: int, body: ProjectUpdate) -> Project:
    changes = body.changes()
    if "owner_id" in changes:
        _check_owner(changes["owner_id"])
    with connection() as conn:
        row = projects.update(conn, project_id, changes)
    if row is None:
        raise _not_found(project_id)
    return Project(**row)


@api.operation("DELETE", "/<id:project_id>", summary="Delete a project", status=204, errors=(404,))
def delete_project(project_id: int) -> None:
    with connection() as conn:
        deleted = projects.delete(conn, project_id)
    if not deleted:
        raise _not_found(project_id)
