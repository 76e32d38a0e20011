"""``/health/live`` and ``/health/ready``: probes cheap enough to run every second.

Ready means the database answers and its Alembic revision is the scripts' head: one
query (``SELECT version_num FROM alembic_version``) under a short timeout, against a head
read once per process (the scripts do not change while it runs).
"""

from __future__ import annotations

import asyncio
import functools

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from project import db
from project.exceptions import driver_error, sqlstate

#: How long ``/health/ready`` waits for the database before answering 503.
READY_TIMEOUT = 2.0
_UNDEFINED_TABLE = "42P01"
_VERSION = text("SELECT version_num FROM alembic_version")

router = APIRouter(prefix="/health", tags=["health"])


class Health(BaseModel):
    """A probe's answer: ``status``, and why when not ready."""

    status: str
    revision: str | None = None
    reason: str | None = None


@functools.cache
def migration_heads() -> tuple[str, ...]:
    """Return the migration scripts' heads, read once per process."""
    from project.migrate.config import script_directory

    return tuple(script_directory().get_heads())


async def readiness() -> tuple[str | None, str | None]:
    """Return ``(reason not ready or None, the database's revision)``."""
    heads = migration_heads()
    if len(heads) != 1:
        return (
            f"the migrations have {len(heads)} heads; run 'manage.py makemigrations --merge'",
            None,
        )
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with db.get_engine().connect() as connection:
                versions = set((await connection.execute(_VERSION)).scalars())
    except TimeoutError:
        return f"the database did not answer within {READY_TIMEOUT:g} s", None
    except DBAPIError as error:
        if sqlstate(error) == _UNDEFINED_TABLE:
            return "the database is not migrated; run 'manage.py migrate'", None
        return f"the database is unreachable ({type(driver_error(error)).__name__})", None
    except Exception as error:  # refused, reset, DNS: any failure to connect means not ready
        return f"the database is unreachable ({type(driver_error(error)).__name__})", None
    if versions != set(heads):
        at = ", ".join(sorted(versions)) or "no revision"
        return f"the database is at {at}, not at head {heads[0]}; run 'manage.py migrate'", None
    return None, heads[0]


@router.get("/live", response_model=Health)
async def live() -> Health:
    """Answer 200 while the process runs (it touches nothing)."""
    return Health(status="live")


@router.get(
    "/ready",
    response_model=Health,
    responses={503: {"model": Health, "description": "database down or not at head"}},
)
async def ready() -> JSONResponse:
    """Answer 200 when the database answers at the migrations' head, 503 otherwise."""
    reason, revision = await readiness()
    if reason is not None:
        return JSONResponse(Health(status="unavailable", reason=reason).model_dump(), 503)
    return JSONResponse(Health(status="ready", revision=revision).model_dump())
