"""Create, drop, empty and inspect databases, on a maintenance connection.

Names are always quoted as identifiers, never pasted into SQL, so a hostile name is at
worst a strange database name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from project.db.url import DatabaseURL
from project.exceptions import CommandError

if TYPE_CHECKING:
    import asyncpg

MAINTENANCE_DATABASE = "postgres"
MAX_IDENTIFIER = 63


def quote_identifier(name: str) -> str:
    """Quote ``name`` as a PostgreSQL identifier, rejecting what no identifier may hold."""
    if not name or "\x00" in name or len(name.encode()) > MAX_IDENTIFIER:
        raise CommandError(
            f"invalid database name {name!r}: 1 to {MAX_IDENTIFIER} bytes, no NUL characters"
        )
    return '"' + name.replace('"', '""') + '"'


async def connect(url: DatabaseURL, *, timeout: float = 10.0) -> asyncpg.Connection:
    """Open a raw asyncpg connection to ``url``.

    No statement cache: these one-off connections gain nothing from it, and without it
    they also work through PgBouncer's transaction pooling.
    """
    import asyncpg

    return await asyncpg.connect(**url.connect_kwargs(), timeout=timeout, statement_cache_size=0)


@asynccontextmanager
async def maintenance(
    url: DatabaseURL, conn: asyncpg.Connection | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """Yield ``conn``, or a new connection to the server's maintenance database."""
    if conn is not None:
        yield conn
        return
    conn = await connect(url.with_database(MAINTENANCE_DATABASE))
    try:
        yield conn
    finally:
        await conn.close()


async def database_exists(url: DatabaseURL) -> bool:
    """Return whether ``url``'s database exists on its server."""
    async with maintenance(url) as conn:
        found = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database)
    return bool(found)


async def create_database(
    url: DatabaseURL, *, template: str | None = None, conn: asyncpg.Connection | None = None
) -> bool:
    """Create ``url``'s database (optionally from ``template``); False if it existed.

    ``conn``: a maintenance connection to use instead of opening one.
    """
    import asyncpg

    statement = f"CREATE DATABASE {quote_identifier(url.database)}"
    if template is not None:
        statement += f" TEMPLATE {quote_identifier(template)}"
    async with maintenance(url, conn) as maintenance_conn:
        try:
            await maintenance_conn.execute(statement)
        except asyncpg.DuplicateDatabaseError:
            return False
    return True


async def drop_database(url: DatabaseURL, *, conn: asyncpg.Connection | None = None) -> bool:
    """Drop ``url``'s database, disconnecting its sessions; False if it did not exist."""
    statement = f"DROP DATABASE IF EXISTS {quote_identifier(url.database)} WITH (FORCE)"
    async with maintenance(url, conn) as conn:
        is_template = await conn.fetchval(
            "SELECT datistemplate FROM pg_database WHERE datname = $1", url.database
        )
        if is_template:  # PostgreSQL refuses to drop a template until it is unmarked
            quoted = quote_identifier(url.database)
            await conn.execute(f"ALTER DATABASE {quoted} WITH IS_TEMPLATE false")
        await conn.execute(statement)
    return is_template is not None


async def flush(url: DatabaseURL) -> list[str]:
    """Delete every row of every table but the migration history; return the tables."""
    conn = await connect(url)
    try:
        tables: list[str] = [
            row["name"]
            for row in await conn.fetch(
                "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS name "
                "FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename <> 'alembic_version' ORDER BY tablename"
            )
        ]
        if tables:
            await conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        return tables
    finally:
        await conn.close()
