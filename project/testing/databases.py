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


async def ensure_template(url: DatabaseURL, *, rebuild: bool = False) -> tuple[str, bool]:
    """Make sure the template for the current code exists; return (name, built now)."""
    print_ = fingerprint()
    name = template_name(url, print_)
    conn = await dbadmin.connect(url.with_database(dbadmin.MAINTENANCE_DATABASE))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        rows = await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1",
            base_name(url).replace("_", r"\_") + r"\_tpl\_%",
        )
        existing = {row["datname"] for row in rows}
        if name in existing and not rebuild:
            return name, False
        for stale in existing:  # old fingerprints and half-built leftovers
            await drop(url.with_database(stale), conn)
        building = url.with_database(f"{name}_new")
        await dbadmin.create_database(building, conn=conn)
        await asyncio.to_thread(_migrate, building)
        quoted_new = dbadmin.quote_identifier(building.database)
        quoted = dbadmin.quote_identifier(name)
        await conn.execute(f"ALTER DATABASE {quoted_new} RENAME TO {quoted}")
        await conn.execute(f"ALTER DATABASE {quoted} WITH IS_TEMPLATE true ALLOW_CONNECTIONS false")
        return name, True
    finally:
        await conn.close()


def _migrate(url: DatabaseURL) -> None:
    from project import db, migrations

    db.set_database_url(url)
    try:
        migrations.upgrade("head", echo=lambda _: None)
    finally:
        db.set_database_url(None)


@dataclass
class WorkerDatabase:
    """This process's clone, and the connection that holds its name."""

    url: DatabaseURL
    lock: asyncpg.Connection

    async def release(self) -> None:
        """Drop the clone and let go of its name."""
        try:
            await drop(self.url, self.lock)
        finally:
            await self.lock.close()


async def clone(url: DatabaseURL, template: str, worker: str | None) -> WorkerDatabase:
    """Clone ``template`` into this process's own database."""
    wanted = base_name(url) + (f"_{worker}" if worker else "")
    lock = await dbadmin.connect(url.with_database(dbadmin.MAINTENANCE_DATABASE))
    try:
        name = wanted
        attempt = 1
        while not await _holds_lock(lock, _key(name)):  # another live run has this name
            attempt += 1
            name = f"{wanted}_r{attempt}"
        target = url.with_database(name)
        await lock.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        try:
            await drop(target, lock)  # a crashed run's leftover: never trust its schema
            await dbadmin.create_database(target, template=template, conn=lock)
        finally:
            await lock.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    except BaseException:
        await lock.close()
        raise
    return WorkerDatabase(target, lock)
