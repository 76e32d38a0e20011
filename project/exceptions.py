"""The project's one exception family, and the one way any exception reaches the user.

``describe(error)`` is the reporting path: the CLI prints ``Error: <describe>`` and exits
1, and the shell, the API's error responses and log and the test plugin show the same line,
every configured password hidden. Code below the CLI imports it from here, never from
``project.management``.

Database errors are known by their driver's types and SQLSTATE (asyncpg's
``PostgresError.sqlstate``, found under SQLAlchemy's ``DBAPIError.orig``), not by class
names or messages. Neither library is imported here unless it is loaded already: an error
from one means it is, and the CLI's ``--help`` must import neither.
"""

from __future__ import annotations

import re
import sys


class ProjectError(Exception):
    """An error the user can act on; the CLI prints it as ``Error: <message>`` and exits 1."""

    exit_code = 1


class ImproperlyConfigured(ProjectError):
    """A setting is missing or has a bad value."""


class CommandError(ProjectError):
    """A management command could not do what it was asked."""


class DatabaseUnavailable(ProjectError):
    """The database could not be reached."""


class NotFound(ProjectError):
    """No live row has the key asked for (the API answers 404)."""


class Conflict(ProjectError):
    """A write collides with what is stored: a unique key taken, a row still referenced
    (the API answers 409)."""


class StaleVersion(Conflict):
    """A versioned row changed since the caller read it (the API answers 409)."""


class InvalidCursor(ProjectError):
    """A pagination cursor that this project did not hand out (the API answers 422)."""


# --- one line ---------------------------------------------------------------------------


def first_line(text: str) -> str:
    """Return the first non-empty line of ``text``: errors reach the user as one line."""
    return (text.strip().splitlines() or [""])[0]


def summary(error: BaseException) -> str:
    """Return ``Type: first line of the message`` (just ``Type`` when it has none)."""
    line = first_line(str(error))
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def describe(error: BaseException) -> str:
    """Return the one line that says what went wrong, every configured password hidden.

    A ProjectError says it in its message, written for the user. A database that could not
    be reached is named, with the driver's reason. Anything else, a statement the server
    refused included, is ``Type: first line``, the type being the driver's own
    (``UndefinedTableError``), not SQLAlchemy's wrapper.
    """
    if isinstance(error, ProjectError):
        line = first_line(str(error)) or type(error).__name__
    elif is_connection_failure(error):
        line = _cannot_connect(driver_error(error))
    else:
        line = summary(driver_error(error))
    return scrub(line)


def scrub(message: str) -> str:
    """Replace every configured database password in ``message`` with ``***``.

    ``describe()`` scrubs its line; text that is more than one line (a traceback the shell
    shows on request) goes through here. Every URL in the settings counts, and the one
    ``use_database()`` chose.
    """
    import dataclasses

    from project.conf import get_settings  # conf imports this module: not at the top
    from project.db.target import chosen
    from project.db.url import MASK, DatabaseURL

    try:
        settings = get_settings()
    except ProjectError:
        return message
    urls: list[object] = [chosen()]
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        urls.extend(value if isinstance(value, tuple) else (value,))
    for url in urls:
        if isinstance(url, DatabaseURL) and url.password:
            message = message.replace(url.password, MASK)
    return message


# --- what a database error means --------------------------------------------------------

INVALID_CATALOG_NAME = "3D000"
#: The SQLSTATEs that mean no usable connection: connection_exception (class 08),
#: invalid_authorization_specification (class 28: a wrong password, an unknown user),
#: invalid_catalog_name (no such database), and 57P01-57P05 (the server shut down, is
#: starting, dropped the database, or closed an idle session).
_NO_CONNECTION = ("08", "28", INVALID_CATALOG_NAME, "57P")


def driver_error(error: BaseException) -> BaseException:
    """Return the driver's own exception behind ``error``, else ``error`` itself.

    SQLAlchemy wraps asyncpg's error twice: its ``DBAPIError.orig`` is the dialect's adapter
    exception, raised from asyncpg's.
    """
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import DBAPIError

        if isinstance(error, DBAPIError) and error.orig is not None:
            orig: BaseException = error.orig
            return orig.__cause__ if orig.__cause__ is not None else orig
    return error


def sqlstate(error: BaseException) -> str | None:
    """Return the SQLSTATE of the server's (or asyncpg's) error behind ``error``, if any."""
    if "asyncpg" not in sys.modules:
        return None
    import asyncpg

    cause = driver_error(error)
    if isinstance(cause, asyncpg.PostgresError):
        code: str | None = cause.sqlstate
        return code
    return None


def is_connection_failure(error: BaseException) -> bool:
    """Return whether ``error`` means the database could not be reached, would not let us
    in or dropped the connection: DatabaseUnavailable, a socket error, one of the SQLSTATEs
    above, or an error on which SQLAlchemy invalidated the connection (asyncpg's
    ``connection is closed`` carries no SQLSTATE)."""
    if isinstance(error, DatabaseUnavailable):
        return True
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import DBAPIError

        if isinstance(error, DBAPIError) and error.connection_invalidated:
            return True
    cause = driver_error(error)
    if isinstance(cause, OSError):
        # A socket error names no file; an OSError that does (a file that cannot be
        # written) is no connection failure.
        return cause.filename is None
    code = sqlstate(cause)
    return code is not None and code.startswith(_NO_CONNECTION)


def _cannot_connect(cause: BaseException) -> str:
    text = first_line(str(cause)) or type(cause).__name__
    hint = _createdb_hint(text) if sqlstate(cause) == INVALID_CATALOG_NAME else ""
    return f"cannot connect to {_where()}: {text}{hint}"


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

    # The server names the database only in its message: read the name, not the meaning.
    match = re.search(r'database "(.*)" does not exist', text)
    if match is not None and match[1] == MAINTENANCE_DATABASE:
        return ""
    return "; create it with 'manage.py createdb'"
