"""Alembic's environment: async, on the project's settings and every installed app's models.

One code path, whatever comes in ``config.attributes["connection"]`` (Alembic's
connection-sharing recipe, so it also works from code that already runs an event loop):

- a sync ``Connection``: what ``manage.py`` passes, from inside its own async connection;
- an ``AsyncConnection``: run on it, inside its greenlet when called from ``run_sync``
  (one not started yet is started, committed and closed here);
- an ``AsyncEngine`` (pytest-alembic's way): connect, take the migration lock, run, and
  dispose the pool before the loop that made it ends;
- nothing: plain ``alembic upgrade head`` gets a one-shot engine from the settings.

``--sql`` renders offline.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any, TextIO, cast

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util.concurrency import in_greenlet

from project.migrate import config as migrate_config
from project.migrate import safety as migration_safety
from project.migrate.lock import take_lock

config = context.config
target_metadata = migrate_config.target_metadata()


def run_offline() -> None:
    """Render the SQL without a database."""
    context.configure(
        url="postgresql+asyncpg://",
        # Alembic only writes and flushes it: a TextIO in all that matters.
        output_buffer=cast(
            TextIO, migration_safety.OfflineTimeouts(config.output_buffer or sys.stdout)
        ),
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **migrate_config.context_options(config),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    """Run the migrations on ``connection``, each revision's transaction under the
    migration timeouts (MIGRATE_DDL_LOCK_TIMEOUT, MIGRATE_STATEMENT_TIMEOUT)."""
    migration_safety.apply_timeouts(connection, echo=config.attributes.get("echo"))
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        **migrate_config.context_options(config),
    )
    with context.begin_transaction():
        context.run_migrations()
    # Only after success: after a failure the caller retries or closes the connection,
    # and a RESET on a broken one would hide the error that matters.
    migration_safety.reset_timeouts(connection)


async def run_on_engine(engine: AsyncEngine, *, dispose: bool) -> None:
    """Open a connection on ``engine``, take the migration lock (so plain ``alembic
    upgrade`` is serialized with ``manage.py migrate`` too), run, and dispose the pool:
    its connections belong to this loop, which is about to end."""
    try:
        async with engine.connect() as connection:
            await take_lock(connection)
            await connection.run_sync(run_on)
            await connection.commit()
    finally:
        if dispose:
            await engine.dispose()


async def run_on_async_connection(connection: AsyncConnection) -> None:
    """Run on ``connection``; one not started yet is started, committed and closed here."""
    if connection.sync_connection is not None:
        await connection.run_sync(run_on)
        return
    async with connection:
        await connection.run_sync(run_on)
        await connection.commit()


def run_shared(shared: Any) -> None:
    """Run on what the caller put in ``config.attributes["connection"]``."""
    if isinstance(shared, Connection):
        run_on(shared)
    elif isinstance(shared, AsyncConnection):
        if in_greenlet() and shared.sync_connection is not None:
            run_on(shared.sync_connection)  # called from run_sync: its loop is running
        else:
            asyncio.run(run_on_async_connection(shared))
    elif isinstance(shared, AsyncEngine):
        asyncio.run(run_on_engine(shared, dispose=True))
    else:
        raise TypeError(
            'config.attributes["connection"] must be a Connection, an AsyncConnection or '
            f"an AsyncEngine, not {type(shared).__name__}"
        )


if context.is_offline_mode():
    run_offline()
elif (shared := config.attributes.get("connection")) is not None:
    run_shared(shared)
else:
    asyncio.run(run_on_engine(migrate_config.create_migration_engine(), dispose=True))
