"""schemathesis hooks for `make fuzz` on projects: positive_data_acceptance, with one documented exception.

A schema-valid body can name an owner_id that no user of the users service has; POST /api/v1/projects and
PATCH /api/v1/projects/{project_id} then answer 422 `owner_not_found`, as their 422 description says. No JSON
schema can say "this user exists", so schemathesis' positive_data_acceptance calls that answer "valid data
rejected". `evidence/fuzz.py` runs projects with `--exclude-checks positive_data_acceptance` and this module as
SCHEMATHESIS_HOOKS, which registers CHECK in its place: schemathesis' own positive_data_acceptance (called, not
copied), whose verdict stands except for its failure on exactly that answer, which `excused` names: one of
OPERATIONS, a request body carrying owner_id, status 422 and error.code `owner_not_found`. Anything else, a 422
`validation_error` on valid data included, fails as before.

schemathesis (.venv-fuzz) loads this file; evidence/fuzz.py and the tests (.venv, no schemathesis) import it
for the names and `excused` alone, so the check is only registered where schemathesis is importable.
"""

from __future__ import annotations

import json
from typing import Any

CHECK = "positive_data_acceptance_except_owner_not_found"
REPLACES = "positive_data_acceptance"
OPERATIONS = frozenset({"POST /api/v1/projects", "PATCH /api/v1/projects/{project_id}"})
STATUS = 422
ERROR_CODE = "owner_not_found"


def error_code(content: bytes | str | None) -> str | None:
    """The `error.code` of an Atlas error body, or None when the body is not one."""
    try:
        code = json.loads(content or b"")["error"]["code"]
    except (ValueError, TypeError, KeyError):
        return None
    return code if isinstance(code, str) else None


def excused(operation: str, body: Any, status_code: int, content: bytes | str | None) -> bool:
    """Whether a refusal of valid data is the documented owner-not-found answer: ``operation`` is a label such
    as "POST /api/v1/projects", ``body`` the request body sent, ``content`` the response body."""
    return (
        operation in OPERATIONS
        and isinstance(body, dict)
        and "owner_id" in body  # the only field the users service is asked about
        and status_code == STATUS
        and error_code(content) == ERROR_CODE
    )


try:
    import schemathesis
    from schemathesis.openapi.checks import RejectedPositiveData
    from schemathesis.specs.openapi.checks import positive_data_acceptance
except ImportError:  # .venv: imported for the names above, not run by schemathesis
    pass
else:

    def positive_data_acceptance_except_owner_not_found(ctx, response, case):
        """schemathesis' positive_data_acceptance, except that a 422 `owner_not_found` answer on the projects
        operations that check an owner is accepted (see evidence/fuzz_hooks.py)."""
        try:
            return positive_data_acceptance(ctx, response, case)
        except RejectedPositiveData:
            if excused(case.operation.label, case.body, response.status_code, response.content):
                return None
            raise

    assert positive_data_acceptance_except_owner_not_found.__name__ == CHECK  # the name the reports show
    schemathesis.check(positive_data_acceptance_except_owner_not_found)
