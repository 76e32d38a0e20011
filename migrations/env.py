"""Alembic's environment: async, on the project's settings and every installed app's models.

Three ways in, one code path: ``manage.py`` passes an open connection in
``config.attributes["connection"]`` (Alembic's connection-sharing recipe, so it also works
from code that already runs an event loop); plain ``alembic upgrade head`` gets a fresh
async engine here; ``--sql`` renders offline.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from project import migrations

config = context.config
target_metadata = migrations.target_metadata()


def run_offline() -> None:
    """Render the SQL without a database."""
    context.configure(
        url="postgresql+asyncpg://",
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **migrations.context_options(config),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_on(connection: Connection) -> None:
    """Run the migrations on ``connection``."""
    context.configure(
        connection=connection, target_metadata=target_metadata, **migrations.context_options(config)
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_with_new_engine() -> None:
    """Open a direct connection from the settings, take the migration lock (plain
    ``alembic upgrade`` is serialized with ``manage.py migrate`` too), run, dispose."""
    engine = migrations.create_migration_engine()
    try:
        async with engine.connect() as connection:
            await migrations.take_lock(connection)
            await connection.run_sync(run_on)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
elif (shared := config.attributes.get("connection")) is not None:
    run_on(shared)
else:
    asyncio.run(run_with_new_engine())
