"""/api/v1/users: create, list, get, update, delete."""

from __future__ import annotations

from atlas_common.current import connection
from atlas_common.errors import ApiError
from atlas_common.routing import Api
from atlas_common.schemas import ListQuery
from atlas_common.table import Table
from psycopg2.errors import UniqueViolation

from users.schemas import User, UserCreate, UserPage, UserUpdate

api = Api("users", "/api/v1/users", tag="users", read_scope="users:read", write_scope="users:write")
users = Table("users", ("email", "name"))


def _not_found(user_id: int) -> ApiError:
    return ApiError(404, "not_found", f"user {user_id} does not exist")


def _email_taken(email: str) -> ApiError:
    return ApiError(409, "email_taken", f"a user with email {email!r} exists already")


@api.operation("POST", "", summary="Create a user", status=201, body=UserCreate, response=User, errors=(409,))
def create_user(body: UserCreate) -> User:
    try:
        with connection() as conn:
            return User(**users.create(conn, body.model_dump()))
    except UniqueViolation:
        raise _email_taken(body.email) from None


@api.operation("GET", "", summary="List users by id, one page at a time", query=ListQuery, response=UserPage)
def list_users(query: ListQuery) -> UserPage:
    with connection() as conn:
        rows, total = users.page(conn, query.limit, query.offset)
    return UserPage(items=[User(**row) for row in rows], limit=query.limit, offset=query.offset, total=total)


@api.operation("GET", "/<id:user_id>", summary="Get one user", response=User, errors=(404,))
def get_user(user_id: int) -> User:
    with connection() as conn:
        row = users.get(conn, user_id)
    if row is None:
        raise _not_found(user_id)
    return User(**row)


@api.operation(
    "PATCH",
    "/<id:user_id>",
    summary="Change a user's email or name",
    body=UserUpdate,
    response=User,
    errors=(404, 409),
)
def update_user(user_id: int, body: UserUpdate) -> User:
    try:
        with connection() as conn:
            row = users.update(conn, user_id, body.changes())
    except UniqueViolation:
        raise _email_taken(body.email) from None
    if row is None:
        raise _not_found(user_id)
    return User(**row)


@api.operation("DELETE", "/<id:user_id>", summary="Delete a user", status=204, errors=(404,))
def delete_user(user_id: int) -> None:
    with connection() as conn:
        deleted = users.delete(conn, user_id)
    if not deleted:
        raise _not_found(user_id)
