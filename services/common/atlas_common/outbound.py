"""What the services' outbound HTTP calls (projects -> users, every service -> the auth service's JWK set)
share: one line saying why a call failed."""

from __future__ import annotations


def reason(exc: BaseException) -> str:
    """The innermost cause ('Connection refused'), not urllib3's paragraph around it."""
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__
    text = str(cause)
    return text.rsplit("] ", 1)[-1] if "] " in text else text or type(exc).__name__
