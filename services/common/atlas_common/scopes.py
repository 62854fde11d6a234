"""The OAuth2 scopes of Atlas, declared once: what the auth service grants (its token endpoint and
`python -m auth create-client`), what each API requires (routing.Api's read and write scopes) and what the
OpenAPI documents list.

A scope is ``<api>:<access>``: GET needs ``<api>:read``, POST, PATCH and DELETE need ``<api>:write``;
the auth service's admin API needs ``auth:admin`` for both.
"""

from __future__ import annotations

SCOPES: dict[str, str] = {
    "users:read": "read users (GET /api/v1/users...); projects needs it too, to check an owner",
    "users:write": "create, change and delete users",
    "projects:read": "read projects (GET /api/v1/projects...)",
    "projects:write": "create, change and delete projects",
    "auth:admin": "list and revoke the auth service's clients (/api/v1/clients)",
}


def unknown(scopes: list[str] | tuple[str, ...] | set[str]) -> list[str]:
    """The scopes of ``scopes`` that Atlas does not know, in the order given."""
    return [s for s in scopes if s not in SCOPES]


def ordered(scopes: set[str] | list[str] | tuple[str, ...]) -> list[str]:
    """Known scopes in declaration order, each once (how a token and a client list them)."""
    wanted = set(scopes)
    return [s for s in SCOPES if s in wanted]
