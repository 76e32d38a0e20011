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
- A clone still exactly as cloned at the end (the template's schema digest and migration
  versions, every table empty; see ``Shape``) is kept, marked clean, and reused by the
  next run after the same check; anything else is dropped and cloned afresh.
- Nothing here drops or truncates a database whose name does not start with ``test_``.
"""

from __future__ import annotations

import asyncio
import hashlib
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from project.conf import BASE_DIR
from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.exceptions import ProjectError

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

    from project.migrate.config import target_metadata

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
    """Return ``test_<db>`` (never the configured database itself, even one already named
    ``test_...``), shortened to leave room for suffixes; a shortened name ends in a hash
    of the full one, so two long names never share their test databases."""
    name = PREFIX + url.database
    if len(name.encode()) <= _NAME_ROOM:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return name.encode()[: _NAME_ROOM - 7].decode(errors="ignore") + "_" + digest


def template_name(url: DatabaseURL, print_: str) -> str:
    """Return the template's name for fingerprint ``print_``."""
    return f"{base_name(url)}_tpl_{print_}"


async def _holds_lock(conn: asyncpg.Connection, key: int) -> bool:
    return bool(await conn.fetchval("SELECT pg_try_advisory_lock($1)", key))


def _key(name: str) -> int:
    return zlib.crc32(f"pastetrader.test-db:{name}".encode())


_SYSTEM_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'"
)
# One line per schema object a test could add, drop or alter: relations, columns with
# their types and defaults, constraints, indexes and functions, in every user schema.
_SCHEMA_DIGEST = f"""
SELECT md5(coalesce(string_agg(line, E'\\n' ORDER BY line), '')) FROM (
    SELECT format('rel %s.%s %s', n.nspname, c.relname, c.relkind) AS line
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_SYSTEM_SCHEMAS}
    UNION ALL
    SELECT format('col %s.%s.%s %s %s %s', n.nspname, c.relname, a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(d.adbin, d.adrelid))
    FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
    LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attnum > 0 AND NOT a.attisdropped AND {_SYSTEM_SCHEMAS}
    UNION ALL
    SELECT format('con %s.%s %s', n.nspname, co.conname, pg_get_constraintdef(co.oid))
    FROM pg_constraint co JOIN pg_namespace n ON n.oid = co.connamespace
    WHERE {_SYSTEM_SCHEMAS}
    UNION ALL
    SELECT format('idx %s', pg_get_indexdef(i.indexrelid))
    FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {_SYSTEM_SCHEMAS}
    UNION ALL
    SELECT format('fn %s.%s(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE {_SYSTEM_SCHEMAS}
) objects
"""


@dataclass(frozen=True)
class Shape:
    """What a clean clone is: this schema (a digest of every user schema object), these
    migration versions, and its tables empty but the migration history."""

    digest: str
    tables: tuple[str, ...]
    versions: tuple[str, ...]

    def note(self, prefix: str) -> str:
        """Return a database comment that records this shape after ``prefix``."""
        return (
            f"{prefix}; schema: {self.digest}; tables: {' '.join(self.tables)}; "
            f"versions: {' '.join(self.versions)}"
        )

    @classmethod
    def from_note(cls, note: str | None) -> Shape | None:
        """Read the shape back from a comment written by ``note()`` (None: no shape)."""
        parts = dict(p.split(": ", 1) for p in (note or "").split("; ")[1:] if ": " in p)
        if not {"schema", "tables", "versions"} <= parts.keys():
            return None
        return cls(
            parts["schema"], tuple(parts["tables"].split()), tuple(parts["versions"].split())
        )

    @classmethod
    async def of(cls, conn: asyncpg.Connection) -> Shape:
        """Read the shape of the database ``conn`` is connected to."""
        digest: str = await conn.fetchval(_SCHEMA_DIGEST)
        tables = tuple(
            row[0]
            for row in await conn.fetch(
                "SELECT quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname = current_schema() ORDER BY 1"
            )
        )
        versions: tuple[str, ...] = ()
        if "alembic_version" in tables:
            rows = await conn.fetch("SELECT version_num FROM alembic_version ORDER BY 1")
            versions = tuple(row[0] for row in rows)
        return cls(digest, tables, versions)


async def _matches(conn: asyncpg.Connection, expected: Shape | None) -> bool:
    """Return whether the database ``conn`` is connected to is a clean copy of
    ``expected``: the same schema and migration history, every other table empty."""
    if expected is None or await Shape.of(conn) != expected:
        return False
    others = [t for t in expected.tables if t != "alembic_version"]
    if not others:
        return True
    rows = " OR ".join(f"EXISTS (SELECT 1 FROM {table})" for table in others)
    return not await conn.fetchval(f"SELECT {rows}")


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
    await _drop_kept_clones(conn, url)
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


async def _drop_kept_clones(conn: asyncpg.Connection, url: DatabaseURL) -> None:
    """Drop the clones kept clean for templates that no longer exist, unless a live
    run holds them."""
    rows = await conn.fetch(
        "SELECT datname FROM pg_database "
        "WHERE datname LIKE $1 AND shobj_description(oid, 'pg_database') LIKE 'clean clone of %' "
        "AND substr(shobj_description(oid, 'pg_database'), 16) NOT IN "
        "(SELECT datname FROM pg_database)",
        base_name(url).replace("_", r"\_") + r"\_%",
    )
    for (name,) in rows:
        if await _holds_lock(conn, _key(name)):
            try:
                await drop(url.with_database(name), conn)
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", _key(name))


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
    from project.migrate import commands as migrations

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
        """Return whether the clone is still a clean copy of its template."""
        notes = await _notes(self.lock, self.template)
        return await _is_clean_copy(self.url, Shape.from_note(notes.get(self.template)))


async def _is_clean_copy(url: DatabaseURL, expected: Shape | None) -> bool:
    """Return whether the database at ``url`` is a clean copy of ``expected``."""
    conn = await dbadmin.connect(url)
    try:
        return await _matches(conn, expected)
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
            notes = await _notes(lock, target.database, wanted)
            if target.database not in notes:
                await dbadmin.create_database(target, template=wanted, conn=lock)
            elif (
                not (built or rebuild)
                and notes[target.database] == _clean_note(wanted)
                and await _is_clean_copy(target, Shape.from_note(notes.get(wanted)))
            ):
                reused = True  # marked in use: a crash must not leave it "clean"
                await _set_note(lock, target.database, "in use")
            else:  # a crashed run's, another template's, or changed since: never trusted
                await drop(target, lock)
                await dbadmin.create_database(target, template=wanted, conn=lock)
        finally:
            await lock.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)
    except BaseException:
        await lock.close()
        raise
    return WorkerDatabase(target, lock, wanted, built, reused)


async def check_server(url: DatabaseURL) -> None:
    """Connect to the server's maintenance database once, or raise."""
    conn = await dbadmin.connect(url.with_database(dbadmin.MAINTENANCE_DATABASE), timeout=10)
    await conn.close()
