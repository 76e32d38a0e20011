"""Turn database and driver exceptions into one line a user can act on."""

from __future__ import annotations

import re
import sys

from project.exceptions import ProjectError, first_line, summary


def _where() -> str:
    from project.db.target import database_label

    try:
        return database_label()
    except ProjectError:
        return "the database"


def _createdb_hint(text: str) -> str:
    """Suggest ``createdb`` for a missing database, unless the missing one is the server's
    maintenance database, which ``createdb`` itself connects to."""
    from project.db.admin import MAINTENANCE_DATABASE

    match = re.search(r'database "(.*)" does not exist', text)
    if match is not None and match[1] == MAINTENANCE_DATABASE:
        return ""
    return "; create it with 'manage.py createdb'"


def describe_database_error(error: BaseException) -> str | None:
    """Return a one-line description of a connection or SQL error, or None if not one."""
    if "sqlalchemy" not in sys.modules and "asyncpg" not in sys.modules:
        return None
    from sqlalchemy import exc

    cause: BaseException = error
    if isinstance(error, exc.DBAPIError) and error.orig is not None:
        cause = error.orig
        if cause.__cause__ is not None:
            cause = cause.__cause__
    elif isinstance(error, exc.SQLAlchemyError):
        return summary(error)
    name = type(cause).__name__
    text = first_line(str(cause))
    if name == "InvalidCatalogNameError":
        return f"cannot connect to {_where()}: {text or name}{_createdb_hint(text)}"
    # A socket error names no file; an OSError that does (a file that cannot be written)
    # is no connection failure.
    connecting = isinstance(cause, OSError) and getattr(cause, "filename", None) is None
    if connecting or name in {
        "InvalidPasswordError",
        "InvalidAuthorizationSpecificationError",
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
    }:
        return f"cannot connect to {_where()}: {text or name}"
    if isinstance(error, exc.DBAPIError):
        return f"{name}: {text}"
    return None
