"""/api/v1/clients: the admin API (scope auth:admin, tokens checked with the service's own keys): list
the clients, get one, revoke one. No answer holds a secret or its hash; clients are created with
``python -m auth create-client`` (the one time a secret is shown)."""

from __future__ import annotations

from atlas_common.current import connection
from atlas_common.errors import ApiError
from atlas_common.routing import Api
from atlas_common.schemas import ListQuery

from auth.clients import clients, revoke
from auth.schemas import Client, ClientPage

api = Api("clients", "/api/v1/clients", tag="clients", read_scope="auth:admin", write_scope="auth:admin")


def _not_found(client_id: str) -> ApiError:
    return ApiError(404, "not_found", f"client {client_id} does not exist")


@api.operation("GET", "", summary="List the clients by id, one page at a time", query=ListQuery, response=ClientPage)
def list_clients(query: ListQuery) -> ClientPage:
    with connection() as conn:
        rows, total = clients.page(conn, query.limit, query.offset)
    return ClientPage(items=[Client(**row) for row in rows], limit=query.limit, offset=query.offset, total=total)


@api.operation("GET", "/<key:client_id>", summary="Get one client", response=Client, errors=(404,))
def get_client(client_id: str) -> Client:
    with connection() as conn:
        row = clients.get(conn, client_id, column="client_id")
    if row is None:
        raise _not_found(client_id)
    return Client(**row)


@api.operation(
    "POST",
    "/<key:client_id>/revoke",
    summary="Revoke a client: from now on its secret gets invalid_client (tokens issued before run out)",
    response=Client,
    errors=(404,),
)
def revoke_client(client_id: str) -> Client:
    with connection() as conn:
        row = revoke(conn, client_id)
    if row is None:
        raise _not_found(client_id)
    return Client(**row)  # revoking a revoked client changes nothing: it keeps its first revoked_at
