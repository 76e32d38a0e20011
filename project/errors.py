"""Turn database and driver exceptions into one line a user can act on."""

from __future__ import annotations

from project.conf import get_settings
from project.exceptions import ProjectError


def _where() -> str:
    try:
        settings = get_settings()
    except ProjectError:
        return "the database"
    url = settings.database_url
    return str(url) if url is not None else "the embedded PostgreSQL"


def describe_database_error(error: BaseException) -> str | None:
    """Return a one-line description of a connection or SQL error, or None if not one."""
    import sys

    if "sqlalchemy" not in sys.modules and "asyncpg" not in sys.modules:
        return None
    from sqlalchemy import exc

    cause: BaseException = error
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        cause = error.orig
        if cause.__cause__ is not None:
            cause = cause.__cause__
    elif isinstance(error, exc.SQLAlchemyError):
        return f"{type(error).__name__}: {str(error).splitlines()[0]}"
    name = type(cause).__name__
    text = (str(cause).strip().splitlines() or [""])[0]
    if isinstance(cause, OSError | TimeoutError) or name in {
        "InvalidPasswordError",
        "InvalidCatalogNameError",
        "InvalidAuthorizationSpecificationError",
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
    }:
        return f"cannot connect to {_where()}: {text or name}"
    if isinstance(error, exc.DBAPIError):
        return f"{name}: {text}"
    return None
