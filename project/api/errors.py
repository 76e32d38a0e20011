"""Error responses: JSON, never a 500 for bad input, never a password.

404 for ``NotFound``; 409 for ``Conflict`` (a unique key taken, a stale version, a retried
transaction that gave up) and for IntegrityError and StaleDataError that reach the app; 422
for invalid input (pydantic's errors without the input echoed back, a bad cursor, a value
the database refuses). Any other error answers 500 with a generic body and one log line.
Messages are ``describe()``'s one line, passwords removed.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from project.exceptions import Conflict, InvalidCursor, NotFound, describe, sqlstate
from project.orm.repository import conflict_from

logger = logging.getLogger("project.api")
#: SQLSTATE class 22: a value out of range, too long, not of its type.
_DATA_EXCEPTION = "22"


def _error(status: int, detail: Any) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


async def _invalid_request(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    # pydantic's "input" and "ctx" would echo what was sent, a password included.
    return _error(
        422,
        [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in error.errors()],
    )


async def _not_found(request: Request, error: Exception) -> JSONResponse:
    return _error(404, describe(error))


async def _conflict(request: Request, error: Exception) -> JSONResponse:
    return _error(409, describe(error))


async def _invalid_cursor(request: Request, error: Exception) -> JSONResponse:
    return _error(422, [{"loc": ["query", "after"], "msg": describe(error), "type": "cursor"}])


async def _integrity(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, IntegrityError)
    return _error(409, describe(conflict_from(error)))


async def _stale(request: Request, error: Exception) -> JSONResponse:
    return _error(409, "the row was changed by someone else; read it again")


async def _database(request: Request, error: Exception) -> JSONResponse:
    # A value the database refuses (too long, out of range): the client's input. asyncpg's
    # data errors reach SQLAlchemy as a plain DBAPIError, not DataError: go by SQLSTATE.
    if (sqlstate(error) or "").startswith(_DATA_EXCEPTION):
        return _error(422, "a value was refused by the database (too long or out of range)")
    raise error  # to CatchUnexpected: a 500 and one log line


class CatchUnexpected:
    """Answer an unexpected error with a JSON 500 and log one scrubbed line, no traceback
    (Starlette's own handler would print the traceback, SQL parameters included)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as error:
            line = describe(error)
            logger.error("%s %s failed: %s", scope.get("method"), scope.get("path"), line)
            if started:  # too late for another response: let the server close it
                raise
            await _error(500, "internal server error")(scope, receive, send)


def install(app: FastAPI) -> None:
    """Register the project's error responses on ``app``."""
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(NotFound, _not_found)
    app.add_exception_handler(Conflict, _conflict)
    app.add_exception_handler(InvalidCursor, _invalid_cursor)
    app.add_exception_handler(IntegrityError, _integrity)
    app.add_exception_handler(StaleDataError, _stale)
    app.add_exception_handler(DBAPIError, _database)
    app.add_middleware(CatchUnexpected)
