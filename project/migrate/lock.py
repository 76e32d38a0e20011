"""Serialize migrations with a PostgreSQL advisory lock, and run online commands on the
one direct connection that holds it.

The lock is session-level: it outlives each revision's own transaction, so a failing
revision rolls back alone while no other ``migrate`` (nor plain ``alembic upgrade``,
through ``migrations/env.py``) can start. Every online command runs on one direct
connection (``DATABASE_DIRECT_URL`` when set: a pooler would keep the lock on a server
connection after the command ends), handed to ``env.py`` through
``config.attributes["connection"]``.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from project.conf import get_settings
from project.exceptions import CommandError, sqlstate
from project.migrate.config import alembic_config, create_migration_engine, translated

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection

    from project.db.url import DatabaseURL

T = TypeVar("T")
LOCK_NAME = "pastetrader.migrate"
LOCK_KEY = zlib.crc32(LOCK_NAME.encode())  # a stable 32-bit key for pg_advisory_lock


async def take_lock(connection: Any, timeout: float | None = None) -> None:
    """Take the migration lock on ``connection`` (an AsyncConnection), waiting at most
    ``timeout`` seconds (default: MIGRATE_LOCK_TIMEOUT)."""
    if timeout is None:
        timeout = get_settings().migrate_lock_timeout
    from sqlalchemy import exc, text

    await connection.execute(text(f"SET lock_timeout = '{int(timeout * 1000)}ms'"))
    try:
        await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
    except exc.DBAPIError as error:
        if sqlstate(error) != "55P03":  # lock_not_available
            raise
        raise CommandError(
            f"another migration is running: advisory lock {LOCK_NAME!r} (key {LOCK_KEY}) "
            f"still held after {timeout:g} s (MIGRATE_LOCK_TIMEOUT)"
        ) from None
    await connection.execute(text("RESET lock_timeout"))
    # Session-level lock: it outlives this commit, and each revision gets its own.
    await connection.commit()


def run_online(
    work: Callable[[Config, Connection], T],
    *,
    lock: bool = False,
    url: DatabaseURL | None = None,
) -> T:
    """Run ``work(config, connection)`` on a direct connection (or on ``url``), under the
    migration lock when ``lock``; Alembic's errors come out as one-line CommandErrors."""

    async def main() -> T:
        engine = create_migration_engine(url)
        try:
            async with engine.connect() as connection:
                if lock:
                    await take_lock(connection)

                def call(sync_connection: Connection) -> T:
                    config = alembic_config()
                    config.attributes["connection"] = sync_connection
                    with translated():
                        return work(config, sync_connection)

                result = await connection.run_sync(call)
                await connection.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(main())
