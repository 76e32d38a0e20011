"""Migrations under load: lock and statement timeouts on each revision's transaction,
whole-revision retries, the blocker named when they run out, and concurrent index builds
through ``autocommit_block``, all against real PostgreSQL and real ``manage.py`` runs."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.migrate import safety as migration_safety
from project.migrate.lock import LOCK_KEY
from tests.project.migrate.support import afetch, environment, head, manage
from tests.support import error_line, ok, write_revision

ADD_NOTE = "op.add_column('tools', sa.Column('note', sa.Text(), nullable=True))"


@asynccontextmanager
async def holding_tools(
    url: DatabaseURL, name: str = "lock-holder", query: str = "SELECT count(*) FROM tools"
) -> AsyncIterator[int]:
    """Hold ACCESS SHARE on ``tools`` in an open transaction (what a long report query
    does; ``query`` may take another lock); yield the holder's pid. Released however the
    block ends."""
    conn = await dbadmin.connect(url)
    try:
        await conn.execute(f"SET application_name = '{name}'")
        pid = int(await conn.fetchval("SELECT pg_backend_pid()"))
        await conn.execute("BEGIN")
        await conn.execute(query)
        yield pid
    finally:
        await conn.close()  # ends the transaction and its locks


async def run_migrate(
    cwd: Path, url: DatabaseURL, *args: str, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py migrate`` without blocking the loop (the holder lives on it)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "manage.py",
        "migrate",
        *args,
        cwd=cwd,
        env=environment(url, **env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    return subprocess.CompletedProcess([], process.returncode or 0, out.decode(), err.decode())


async def probe(url: DatabaseURL, stop: asyncio.Event, waits: list[float]) -> None:
    """Run the application's query on ``tools`` in a loop, recording each one's time."""
    conn = await dbadmin.connect(url)
    try:
        while not stop.is_set():
            started = time.monotonic()
            await conn.fetchval("SELECT count(*) FROM tools")
            waits.append(time.monotonic() - started)
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def versions(url: DatabaseURL) -> list[str]:
    """Return the version table's revisions, read without leaving the loop."""
    return sorted(row[0] for row in await afetch(url, "SELECT version_num FROM alembic_version"))


def migrated_copy(project_copy: Path, url: DatabaseURL, upgrade: str) -> str:
    """Migrate ``url`` to head, then add a revision doing ``upgrade``; return its id."""
    ok(manage("migrate", url=url, cwd=project_copy))
    return write_revision(project_copy, "blocked", head(), upgrade)


async def test_a_blocked_migrate_gives_up_names_the_holder_and_keeps_queries_moving(
    scratch_db: DatabaseURL, project_copy: Path
) -> None:
    rev = migrated_copy(project_copy, scratch_db, ADD_NOTE)
    waits: list[float] = []
    stop = asyncio.Event()
    async with holding_tools(scratch_db) as pid:
        prober = asyncio.create_task(probe(scratch_db, stop, waits))
        try:
            started = time.monotonic()
            result = await run_migrate(
                project_copy, scratch_db, MIGRATE_DDL_LOCK_TIMEOUT="1", MIGRATE_DDL_RETRIES="2"
            )
            elapsed = time.monotonic() - started
        finally:
            stop.set()
            await asyncio.wait_for(prober, timeout=30)
    line = error_line(result)
    assert f"revision {rev} gave up waiting for a lock on table tools after 3 attempts" in line
    assert f"pid {pid} (user " in line
    assert "application 'lock-holder'" in line
    assert "idle in transaction for " in line
    assert "query 'SELECT count(*) FROM tools'" in line
    assert f"the database is at {head()}" in line
    assert result.stdout.count("rolled back, retry") == 2
    assert elapsed >= 3  # three lock waits of a second each
    # Each application query waited at most about one lock timeout.
    assert len(waits) > 5
    assert max(waits) < 1.5, max(waits)
    assert await versions(scratch_db) == [head()]
    columns = await afetch(
        scratch_db,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'tools' AND column_name = 'note'",
    )
    assert columns == []

    # Once the holder has gone, the same migrate succeeds.
    result = await run_migrate(project_copy, scratch_db, MIGRATE_DDL_LOCK_TIMEOUT="1")
    assert f"Applied {rev} blocked" in ok(result)
    assert await versions(scratch_db) == [rev]


async def test_a_revision_whose_second_statement_times_out_is_retried_whole(
    scratch_db: DatabaseURL, project_copy: Path
) -> None:
    # The first statement succeeds, the second waits for the lock: a retry that found
    # the first one's table still there would fail with "already exists".
    rev = migrated_copy(
        project_copy,
        scratch_db,
        "op.create_table('side', sa.Column('id', sa.Integer, primary_key=True))\n    "
        "op.execute('ALTER TABLE tools ADD COLUMN note text')",
    )
    async with holding_tools(scratch_db):
        migrating = asyncio.create_task(
            run_migrate(
                project_copy, scratch_db, MIGRATE_DDL_LOCK_TIMEOUT="0.5", MIGRATE_DDL_RETRIES="5"
            )
        )
        # Hold the lock through the first attempt and its rollback.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            waiting = await afetch(
                scratch_db,
                "SELECT 1 FROM pg_locks WHERE NOT granted AND relation = 'tools'::regclass",
            )
            if waiting:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.8)  # past the first timeout
        side = await afetch(scratch_db, "SELECT to_regclass('side')::text")
        assert side == [(None,)]  # the first statement was rolled back with the second
    result = await migrating
    out = ok(result)
    assert "rolled back, retry 1 of 5" in out
    assert f"Applied {rev} blocked" in out
    assert await versions(scratch_db) == [rev]
    assert await afetch(scratch_db, "SELECT to_regclass('side')::text") == [("side",)]


async def test_each_revision_runs_under_the_timeouts_raw_sql_included(
    scratch_db: DatabaseURL, project_copy: Path
) -> None:
    # Raw SQL records what the transaction's settings were when it ran.
    rev = migrated_copy(
        project_copy,
        scratch_db,
        "op.execute(\"CREATE TABLE seen AS SELECT current_setting('lock_timeout') AS lock, "
        "current_setting('statement_timeout') AS stmt\")",
    )
    out = ok(
        manage(
            "migrate",
            url=scratch_db,
            cwd=project_copy,
            env={"MIGRATE_DDL_LOCK_TIMEOUT": "2.5", "MIGRATE_STATEMENT_TIMEOUT": "600"},
        )
    )
    assert f"Applied {rev}" in out
    assert await afetch(scratch_db, "SELECT lock, stmt FROM seen") == [("2500ms", "10min")]


async def test_statement_timeout_stops_a_long_statement(
    scratch_db: DatabaseURL, project_copy: Path
) -> None:
    rev = migrated_copy(project_copy, scratch_db, "op.execute('SELECT pg_sleep(5)')")
    result = await run_migrate(project_copy, scratch_db, MIGRATE_STATEMENT_TIMEOUT="0.3")
    line = error_line(result)
    assert f"revision {rev} failed and was rolled back" in line
    assert "statement timeout" in line
    assert await versions(scratch_db) == [head()]


CONCURRENT_INDEX = """\
with op.get_context().autocommit_block():
        op.create_index('ix_tools_desc', 'tools', ['description'], unique=True,
                        postgresql_concurrently=True)"""


async def insert_duplicate_tools(url: DatabaseURL) -> None:
    conn = await dbadmin.connect(url)
    try:
        await conn.execute(
            "INSERT INTO tools (name, tool_type, description) "
            "VALUES ('a', 'http', 'same'), ('b', 'http', 'same')"
        )
    finally:
        await conn.close()


async def index_validity(url: DatabaseURL, name: str) -> list[tuple[object, ...]]:
    return await afetch(
        url,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        f"WHERE c.relname = '{name}'",
    )


async def test_a_concurrent_index_through_autocommit_block_ends_valid(
    scratch_db: DatabaseURL, project_copy: Path
) -> None:
    rev = migrated_copy(project_copy, scratch_db, CONCURRENT_INDEX)
    out = ok(await run_migrate(project_copy, scratch_db, timeout=60))
    assert f"Applied {rev}" in out
    assert await index_validity(scratch_db, "ix_tools_desc") == [(True,)]
    assert await versions(scratch_db) == [rev]
    # The advisory lock was taken and released without an open transaction in the way.
    held = await afetch(
        scratch_db,
        "SELECT 1 FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
        f"WHERE l.locktype = 'advisory' AND l.objid = {LOCK_KEY} "
        "AND d.datname = current_database()",
    )
    assert held == []


async def test_a_failed_concurrent_build_leaves_no_invalid_index_after_the_retry(
    scratch_db: DatabaseURL, project_copy: Path
) -> None:
    rev = migrated_copy(project_copy, scratch_db, CONCURRENT_INDEX)
    await insert_duplicate_tools(scratch_db)  # the unique build fails half-way
    line = error_line(await run_migrate(project_copy, scratch_db, timeout=60))
    assert f"revision {rev} failed and was rolled back" in line
    assert await index_validity(scratch_db, "ix_tools_desc") == [(False,)]  # the leftover
    conn = await dbadmin.connect(scratch_db)
    try:
        await conn.execute("UPDATE tools SET description = name")
    finally:
        await conn.close()
    out = ok(await run_migrate(project_copy, scratch_db, timeout=60))
    assert "Dropped INVALID index ix_tools_desc" in out
    assert f"Applied {rev}" in out
    assert await index_validity(scratch_db, "ix_tools_desc") == [(True,)]


def test_lock_timeout_errors_are_recognised() -> None:
    error = asyncpg.exceptions.LockNotAvailableError("canceling statement due to lock timeout")
    assert migration_safety.is_lock_timeout(error)
    assert not migration_safety.is_lock_timeout(ValueError("x"))
    assert [migration_safety.pause(n) for n in (1, 2, 3, 10)] == [0.5, 1.0, 2.0, 10.0]
    assert migration_safety.tables_of("ALTER TABLE public.tools ADD COLUMN x int") == [
        "public.tools"
    ]
    assert migration_safety.tables_of(None) == []


async def test_a_concurrent_build_that_times_out_is_retried_without_its_leftover(
    scratch_db: DatabaseURL, project_copy: Path
) -> None:
    # CREATE INDEX CONCURRENTLY records the index, then waits for every older
    # transaction: the holder's. The lock timeout leaves an INVALID index behind, which
    # the retry must drop before it builds again.
    rev = migrated_copy(
        project_copy, scratch_db, CONCURRENT_INDEX.replace("unique=True", "unique=False")
    )
    # A writer's open transaction (ROW EXCLUSIVE): what the build waits for.
    async with holding_tools(scratch_db, query="LOCK TABLE tools IN ROW EXCLUSIVE MODE"):
        migrating = asyncio.create_task(
            run_migrate(
                project_copy, scratch_db, MIGRATE_DDL_LOCK_TIMEOUT="0.5", MIGRATE_DDL_RETRIES="8"
            )
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if await index_validity(scratch_db, "ix_tools_desc"):
                break
            await asyncio.sleep(0.05)
        assert await index_validity(scratch_db, "ix_tools_desc") == [(False,)]
        await asyncio.sleep(1.5)  # through at least one timeout and retry
    out = ok(await migrating)
    assert "rolled back, retry 1 of 8" in out
    assert "Dropped INVALID index ix_tools_desc" in out
    assert f"Applied {rev}" in out
    assert await index_validity(scratch_db, "ix_tools_desc") == [(True,)]


def test_the_settings_and_their_bad_values() -> None:
    from project.conf import settings_from
    from project.exceptions import ImproperlyConfigured

    defaults = settings_from({})
    assert defaults.migrate_ddl_lock_timeout == 5.0
    assert defaults.migrate_ddl_retries == 3
    assert defaults.migrate_statement_timeout == 0.0
    chosen = settings_from(
        {
            "MIGRATE_DDL_LOCK_TIMEOUT": "0.5",
            "MIGRATE_DDL_RETRIES": "0",
            "MIGRATE_STATEMENT_TIMEOUT": "30",
        }
    )
    assert (chosen.migrate_ddl_lock_timeout, chosen.migrate_ddl_retries) == (0.5, 0)
    assert chosen.migrate_statement_timeout == 30.0
    for name, bad in (
        ("MIGRATE_DDL_LOCK_TIMEOUT", "-1"),
        ("MIGRATE_DDL_LOCK_TIMEOUT", "soon"),
        ("MIGRATE_DDL_RETRIES", "1.5"),
        ("MIGRATE_DDL_RETRIES", "-2"),
        ("MIGRATE_STATEMENT_TIMEOUT", "inf"),
    ):
        with pytest.raises(ImproperlyConfigured, match=f"^{name} must be"):
            settings_from({name: bad})


def test_a_bad_setting_stops_migrate_before_it_runs(scratch_db: DatabaseURL) -> None:
    line = error_line(manage("migrate", url=scratch_db, env={"MIGRATE_DDL_RETRIES": "many"}))
    assert "MIGRATE_DDL_RETRIES must be a non-negative integer, got 'many'" in line
    assert manage("migrate", "--check", url=scratch_db).returncode == 1  # nothing applied


async def test_a_blocked_rollback_is_retried_and_names_the_holder_too(
    scratch_db: DatabaseURL, project_copy: Path
) -> None:
    ok(manage("migrate", url=scratch_db, cwd=project_copy))
    rev = write_revision(project_copy, "note", head(), ADD_NOTE, "op.drop_column('tools', 'note')")
    ok(manage("migrate", url=scratch_db, cwd=project_copy))
    async with holding_tools(scratch_db) as pid:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "manage.py",
            "rollback",
            "--yes",
            cwd=project_copy,
            env=environment(scratch_db, MIGRATE_DDL_LOCK_TIMEOUT="0.5", MIGRATE_DDL_RETRIES="1"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    result = subprocess.CompletedProcess([], process.returncode or 0, out.decode(), err.decode())
    line = error_line(result)
    assert f"revision {rev} gave up waiting for a lock on table tools after 2 attempts" in line
    assert f"held by pid {pid} " in line
    assert "rolled back, retry 1 of 1" in result.stdout
    assert await versions(scratch_db) == [rev]


def test_the_printed_sql_carries_the_timeouts_after_each_begin(scratch_db: DatabaseURL) -> None:
    sql = ok(
        manage(
            "migrate",
            "--sql",
            url=scratch_db,
            env={"MIGRATE_DDL_LOCK_TIMEOUT": "2", "MIGRATE_STATEMENT_TIMEOUT": "60"},
        )
    )
    begins = sql.count("BEGIN;")
    assert begins >= 3
    assert sql.count("BEGIN;\n\nSET LOCAL lock_timeout = '2000ms';\n\n") == begins
    assert sql.count("SET LOCAL statement_timeout = '60000ms';") == begins
