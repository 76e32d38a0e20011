"""The test databases: one template migrated once, one clone per test process.

- The template ``test_<db>_tpl_<fingerprint>`` is built through the real migrations under
  a temporary name and renamed only once they succeed, so a crashed build is never
  trusted. The fingerprint covers the migration files and the models' DDL: when either
  changes, a new template is built and the old ones are dropped.
- Each process clones the template with ``CREATE DATABASE ... TEMPLATE`` into
  ``test_<db>_<worker>`` (``test_<db>`` without xdist). Building and cloning run under one
  advisory lock, so clones never overlap and nothing is connected to the template.
- Each clone's name is also held by an advisory lock for the process's lifetime: a second
  run on the same server takes the next free name, and a leftover of a crashed run
  (its lock gone) is dropped and cloned afresh.
- Nothing here drops or truncates a database whose name does not start with ``test_``.
"""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from project import dbadmin
from project.conf import BASE_DIR
from project.exceptions import ProjectError
from project.urls import DatabaseURL

if TYPE_CHECKING:
    import asyncpg

PREFIX = "test_"
LOCK_KEY = zlib.crc32(b"pastetrader.test-template")
_NAME_ROOM = 40  # leaves room for the suffixes within PostgreSQL's 63 bytes


class UnsafeDatabase(ProjectError):
    """A destructive operation was aimed at a database not named ``test_*``."""


def require_test_name(name: str) -> str:
    """Return ``name`` if it starts with ``test_``; raise otherwise."""
    if not name.startswith(PREFIX):
        raise UnsafeDatabase(f"refusing to drop or truncate {name!r}: its name lacks {PREFIX!r}")
    return name


async def drop(url: DatabaseURL, conn: asyncpg.Connection | None = None) -> bool:
    """Drop a test database (never another one)."""
    require_test_name(url.database)
    return await dbadmin.drop_database(url, conn=conn)


async def truncate_all(url: DatabaseURL) -> list[str]:
    """Empty every table of a test database but the migration history."""
    require_test_name(url.database)
    return await dbadmin.flush(url)


def fingerprint() -> str:
    """Return a hash of the migration files and the models' DDL."""
    from sqlalchemy.dialects import postgresql
    from sqlalchemy.schema import CreateIndex, CreateTable

    from project.migrations import target_metadata

    digest = hashlib.sha256()
    migrations_dir = BASE_DIR / "migrations"
    for path in sorted(migrations_dir.glob("*.py")) + sorted(
        (migrations_dir / "versions").glob("*.py")
    ):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    for table in target_metadata().sorted_tables:
        digest.update(str(CreateTable(table).compile(dialect=dialect)).encode())
        for index in sorted(table.indexes, key=lambda i: i.name or ""):
            digest.update(str(CreateIndex(index).compile(dialect=dialect)).encode())
    return digest.hexdigest()[:12]


def base_name(url: DatabaseURL) -> str:
    """Return ``test_<db>``, shortened to leave room for suffixes."""
    name = url.database if url.database.startswith(PREFIX) else PREFIX + url.database
    return name[:_NAME_ROOM]


def template_name(url: DatabaseURL, print_: str) -> str:
    """Return the template's name for fingerprint ``print_``."""
    return f"{base_name(url)}_tpl_{print_}"


async def _holds_lock(conn: asyncpg.Connection, key: int) -> bool:
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))


def _key(name: str) -> int:
    return zlib.crc32(f"pastetrader.test-db:{name}".encode())


async def _ensure_template_locked(
    conn: asyncpg.Connection, url: DatabaseURL, name: str, *, rebuild: bool, run_id: str | None
) -> bool:
    """Make sure template ``name`` exists; ``conn`` holds LOCK_KEY. Return: built now.

    ``rebuild`` forces a new build, once per ``run_id``: the processes of one run share it.
    """
    rows = await conn.fetch(
        "SELECT datname, shobj_description(oid, 'pg_database') AS note FROM pg_database "
        "WHERE datname LIKE $1",
        base_name(url).replace("_", r"\_") + r"\_tpl\_%",
    )
    notes = {row["datname"]: row["note"] for row in rows}
    marker = f"built by run {run_id}" if run_id else "built"
    if name in notes and (not rebuild or notes[name] == marker):
        return False
    for stale in notes:  # old fingerprints and half-built leftovers
        await drop(url.with_database(stale), conn)
    building = url.with_database(f"{name}_new")
    await dbadmin.create_database(building, conn=conn)
    await asyncio.to_thread(_migrate, building)
    quoted_new = dbadmin.quote_identifier(building.database)
    quoted = dbadmin.quote_identifier(name)
    await conn.execute(f"ALTER DATABASE {quoted_new} RENAME TO {quoted}")
    await conn.execute(f"ALTER DATABASE {quoted} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
    await conn.execute(f"COMMENT ON DATABASE {quoted} IS '{marker}'")
    return True


async def ensure_template(
    url: DatabaseURL, *, rebuild: bool = False, run_id: str | None = None
) -> tuple[str, bool]:
    """Make sure the template for the current code exists; return (name, built now)."""
    name = template_name(url, fingerprint())
    conn = await dbadmin.connect(url.with_database(dbadmin.MAINTENANCE_DATABASE))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        return name, await _ensure_template_locked(conn, url, name, rebuild=rebuild, run_id=run_id)
    finally:
        await conn.close()


def _migrate(url: DatabaseURL) -> None:
    from project import db, migrations

    db.set_database_url(url)
    try:
        migrations.upgrade("head", echo=lambda _: None)
    finally:
        db.set_database_url(None)


async def _note(conn: asyncpg.Connection, name: str) -> str | None:
    """Return the comment on database ``name``: what the plugin wrote about it."""
    note: str | None = await conn.fetchval(
        "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = $1", name
    )
    return note


async def _set_note(conn: asyncpg.Connection, name: str, note: str) -> None:
    quoted = dbadmin.quote_identifier(name)
    await conn.execute(f"COMMENT ON DATABASE {quoted} IS {_literal(note)}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass
class WorkerDatabase:
    """This process's clone, and the connection that holds its name."""

    url: DatabaseURL
    lock: asyncpg.Connection
    template: str
    shape: tuple[list[str], list[str]]  # tables and migration versions, as cloned
    template_built: bool = False
    reused: bool = False

    async def release(self, *, keep: bool = True) -> bool:
        """Let go of the clone: keep it for the next run if it is as clean as the template
        left it (then the next run skips the clone), drop it otherwise. Return: kept."""
        try:
            if keep and await _is_clean(self.url, self.shape):
                await _set_note(self.lock, self.url.database, _clean_note(self.template))
                return True
            await drop(self.url, self.lock)
            return False
        finally:
            await self.lock.close()


def _clean_note(template: str) -> str:
    return f"clean clone of {template}"


async def _shape(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    """Return the database's tables and the versions in its migration history."""
    tables = [
        row[0]
        for row in await conn.fetch(
            "SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
    ]
    versions = []
    if "alembic_version" in tables:
        versions = [r[0] for r in await conn.fetch("SELECT version_num FROM alembic_version")]
    return tables, sorted(versions)


async def _is_clean(url: DatabaseURL, shape: tuple[list[str], list[str]]) -> bool:
    """Return whether the clone is as cloned: the same tables and migration history, and
    every other table empty (tests roll back, and transactional_db truncates)."""
    conn = await dbadmin.connect(url)
    try:
        if await _shape(conn) != shape:
            return False
        for table in shape[0]:
            if table != "alembic_version" and await conn.fetchval(
                f"SELECT EXISTS (SELECT 1 FROM {table})"
            ):
                return False
        return True
    finally:
        await conn.close()


async def _claim_name(lock: asyncpg.Connection, wanted: str) -> str:
    """Take the first free name from ``wanted``, ``wanted_r2``, ...; a live run holds its."""
    name, attempt = wanted, 1
    while not await _holds_lock(lock, _key(name)):
        attempt += 1
        name = f"{wanted}_r{attempt}"
    return name


async def clone(
    url: DatabaseURL,
    template: str | None,
    worker: str | None,
    *,
    rebuild: bool = False,
    run_id: str | None = None,
) -> WorkerDatabase:
    """Give this process its own database, a clone of ``template``.

    With ``template`` None, first make sure the current code's template exists (built
    under the same lock). A clone a previous run left clean, of this very template, is
    reused as it is; anything else under the name is dropped and cloned afresh. One
    connection does it all and keeps this process's name.
    """
    wanted = template
    if wanted is None:  # computed before the lock: it imports the models
        wanted = template_name(url, fingerprint())
    lock = await dbadmin.connect(url.with_database(dbadmin.MAINTENANCE_DATABASE))
    try:
        target = url.with_database(
            await _claim_name(lock, base_name(url) + (f"_{worker}" if worker else ""))
        )
        await lock.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        built = False
        try:
            if template is None:
                built = await _ensure_template_locked(
                    lock, url, wanted, rebuild=rebuild, run_id=run_id
                )
            reused = not (built or rebuild) and await _note(lock, target.database) == _clean_note(
                wanted
            )
            if not reused:
                await drop(target, lock)  # a crashed run's leftover: never trust its schema
                await dbadmin.create_database(target, template=wanted, conn=lock)
        finally:
            await lock.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
        # Until a clean release says otherwise, the clone is in use (or was left dirty).
        await _set_note(lock, target.database, "in use")
        conn = await dbadmin.connect(target)
        try:
            shape = await _shape(conn)
        finally:
            await conn.close()
    except BaseException:
        await lock.close()
        raise
    return WorkerDatabase(target, lock, wanted, shape, built, reused)


def server_url() -> DatabaseURL:
    """Return the settings' server URL without importing SQLAlchemy (the xdist controller
    only checks that the server answers)."""
    from project.conf import get_settings

    settings = get_settings()
    if settings.database_url is not None:
        return settings.database_url
    from project import embedded

    return embedded.ensure_running()


async def check_server(url: DatabaseURL) -> None:
    """Connect to the server's maintenance database once, or raise."""
    conn = await dbadmin.connect(url.with_database(dbadmin.MAINTENANCE_DATABASE), timeout=10)
    await conn.close()
