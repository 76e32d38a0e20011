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


@dataclass(frozen=True)
class Shape:
    """What a clean clone holds: these tables, all empty but the migration history."""

    tables: tuple[str, ...]
    versions: tuple[str, ...]

    def note(self, prefix: str) -> str:
        """Return a database comment that records this shape after ``prefix``."""
        return f"{prefix}; tables: {' '.join(self.tables)}; versions: {' '.join(self.versions)}"

    @classmethod
    def from_note(cls, note: str | None) -> Shape | None:
        """Read the shape back from a comment written by ``note()`` (None: no shape)."""
        parts = dict(p.split(": ", 1) for p in (note or "").split("; ")[1:] if ": " in p)
        if "tables" not in parts or "versions" not in parts:
            return None
        return cls(tuple(parts["tables"].split()), tuple(parts["versions"].split()))

    @classmethod
    async def of(cls, conn: asyncpg.Connection) -> Shape:
        """Read the shape of the database ``conn`` is connected to."""
        tables = tuple(
            row[0]
            for row in await conn.fetch(
                "SELECT quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname = 'public' ORDER BY 1"
            )
        )
        versions: tuple[str, ...] = ()
        if "alembic_version" in tables:
            rows = await conn.fetch("SELECT version_num FROM alembic_version ORDER BY 1")
            versions = tuple(row[0] for row in rows)
        return cls(tables, versions)


async def _ensure_template_locked(
    conn: asyncpg.Connection, url: DatabaseURL, name: str, *, rebuild: bool, run_id: str | None
) -> bool:
    """Make sure template ``name`` exists; ``conn`` holds LOCK_KEY. Return: built now.

    ``rebuild`` forces a new build, once per ``run_id``: the processes of one run share it.
    The template's comment records who built it and its shape (see ``Shape``).
    """
    rows = await conn.fetch(
        "SELECT datname, shobj_description(oid, 'pg_database') AS note FROM pg_database "
        "WHERE datname LIKE $1",
        base_name(url).replace("_", r"\_") + r"\_tpl\_%",
    )
    notes = {row["datname"]: row["note"] or "" for row in rows}
    marker = f"built by run {run_id}" if run_id else "built"
    if name in notes and (not rebuild or notes[name].split(";")[0] == marker):
        return False
    for stale in notes:  # old fingerprints and half-built leftovers
        await drop(url.with_database(stale), conn)
    building = url.with_database(f"{name}_new")
    await dbadmin.create_database(building, conn=conn)
    await asyncio.to_thread(_migrate, building)
    built = await dbadmin.connect(building)
    try:
        shape = await Shape.of(built)
    finally:
        await built.close()
    quoted_new = dbadmin.quote_identifier(building.database)
    await conn.execute(f"ALTER DATABASE {quoted_new} RENAME TO {dbadmin.quote_identifier(name)}")
    await conn.execute(
        f"ALTER DATABASE {dbadmin.quote_identifier(name)} WITH IS_TEMPLATE true "
        "ALLOW_CONNECTIONS false"
    )
    await _set_note(conn, name, shape.note(marker))
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
    from project import migrations

    # The URL goes to the migration alone: the process's own database stays as it is.
    migrations.upgrade("head", echo=lambda _: None, url=url)


async def _notes(conn: asyncpg.Connection, *names: str) -> dict[str, str | None]:
    """Return the comment of each existing database of ``names``."""
    rows = await conn.fetch(
        "SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
        "WHERE datname = ANY($1::text[])",
        list(names),
    )
    return {row[0]: row[1] for row in rows}


async def _set_note(conn: asyncpg.Connection, name: str, note: str) -> None:
    quoted = dbadmin.quote_identifier(name)
    await conn.execute(f"COMMENT ON DATABASE {quoted} IS {_literal(note)}")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _clean_note(template: str) -> str:
    return f"clean clone of {template}"


@dataclass
class WorkerDatabase:
    """This process's clone, and the connection that holds its name."""

    url: DatabaseURL
    lock: asyncpg.Connection
    template: str
    template_built: bool = False
    reused: bool = False

    async def release(self, *, keep: bool = True) -> bool:
        """Let go of the clone: keep it for the next run if it is as clean as the template
        left it (then the next run skips the clone), drop it otherwise. Return: kept."""
        try:
            if keep and await self._is_clean():
                await _set_note(self.lock, self.url.database, _clean_note(self.template))
                return True
            await drop(self.url, self.lock)
            return False
        finally:
            await self.lock.close()

    async def _is_clean(self) -> bool:
        """Return whether the clone has the template's tables and migration history,
        every other table empty (tests roll back, and transactional_db truncates)."""
        notes = await _notes(self.lock, self.template)
        expected = Shape.from_note(notes.get(self.template))
        if expected is None:  # a template from before shapes were recorded
            return False
        conn = await dbadmin.connect(self.url)
        try:
            if await Shape.of(conn) != expected:
                return False
            for table in expected.tables:
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
        built = reused = False
        try:
            if template is None:
                built = await _ensure_template_locked(
                    lock, url, wanted, rebuild=rebuild, run_id=run_id
                )
            notes = await _notes(lock, target.database)
            if target.database not in notes:
                await dbadmin.create_database(target, template=wanted, conn=lock)
            elif not (built or rebuild) and notes[target.database] == _clean_note(wanted):
                reused = True  # marked in use below: a crash must not leave it "clean"
                await _set_note(lock, target.database, "in use")
            else:  # a crashed run's or another template's: never trust its schema
                await drop(target, lock)
                await dbadmin.create_database(target, template=wanted, conn=lock)
        finally:
            await lock.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    except BaseException:
        await lock.close()
        raise
    return WorkerDatabase(target, lock, wanted, built, reused)


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
