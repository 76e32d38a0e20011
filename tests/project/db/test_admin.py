"""Creating, dropping and emptying databases: ``project.db.admin`` and the commands on it,
including the production guard of the destructive ones."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from project import conf
from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.exceptions import CommandError
from project.management import call_command
from project.migrate.config import script_directory
from project.testing import databases
from tests.support import error_line, ok, run_manage

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "S3cretPw"
SETTING_VARIABLES = conf.VARIABLES


def manage(
    *args: str, url: DatabaseURL, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` as a real process, off a terminal, on ``url`` (with a password)."""
    secret = url if url.password else replace(url, password=PASSWORD)
    settings = {"DATABASE_URL": secret.render(hide_password=False), **(env or {})}
    result = run_manage(*args, env=settings, timeout=120)
    assert PASSWORD not in result.stdout + result.stderr
    return result


async def afetch(url: DatabaseURL, query: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = await dbadmin.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(query, *args)]
    finally:
        await conn.close()


def fetch(url: DatabaseURL, query: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run ``query`` on ``url`` in a connection of its own."""
    return asyncio.run(afetch(url, query, *args))


def execute(url: DatabaseURL, statement: str) -> None:
    async def run() -> None:
        conn = await dbadmin.connect(url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def exists(url: DatabaseURL) -> bool:
    return asyncio.run(dbadmin.database_exists(url))


def head() -> str:
    found = script_directory().get_current_head()
    assert found is not None
    return found


def versions(url: DatabaseURL) -> list[str]:
    if not fetch(url, "SELECT 1 FROM pg_tables WHERE tablename = 'alembic_version'"):
        return []
    return [row[0] for row in fetch(url, "SELECT version_num FROM alembic_version")]


def make_table_with_rows(url: DatabaseURL) -> None:
    execute(url, "CREATE TABLE things (id serial PRIMARY KEY, name text)")
    execute(url, "INSERT INTO things (name) VALUES ('a'), ('b')")


def table_names(url: DatabaseURL) -> set[str]:
    rows = fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row[0] for row in rows}


class _NotATerminal:
    def isatty(self) -> bool:
        return False


# --- quoting -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("plain", '"plain"'),
        ("Mixed Case", '"Mixed Case"'),
        ('a"b', '"a""b"'),
        ('x"; DROP DATABASE postgres; --', '"x""; DROP DATABASE postgres; --"'),
        ("it's", '"it\'s"'),
        ("n" * 63, '"' + "n" * 63 + '"'),
        ("é" * 31, '"' + "é" * 31 + '"'),  # 62 bytes
    ],
)
def test_quote_identifier(name: str, quoted: str) -> None:
    assert dbadmin.quote_identifier(name) == quoted


@pytest.mark.parametrize(
    "name",
    ["", "n" * 64, "é" * 32, "a\x00b"],
    ids=["empty", "64-bytes", "64-bytes-multibyte", "nul"],
)
def test_quote_identifier_rejects(name: str) -> None:
    with pytest.raises(CommandError, match="invalid database name"):
        dbadmin.quote_identifier(name)


# --- dbadmin on the real server -----------------------------------------------------------


@pytest.fixture
def odd_url(db_url: DatabaseURL) -> Iterator[DatabaseURL]:
    """A database URL whose name is shaped like an SQL injection (dropped afterwards)."""
    url = db_url.with_database(f'{db_url.database}_x"; DROP DATABASE postgres; --')
    assert len(url.database.encode()) <= dbadmin.MAX_IDENTIFIER
    asyncio.run(databases.drop(url))
    try:
        yield url
    finally:
        asyncio.run(databases.drop(url))


def test_hostile_name_is_quoted(odd_url: DatabaseURL) -> None:
    async def scenario() -> None:
        assert await dbadmin.create_database(odd_url) is True
        assert await dbadmin.create_database(odd_url) is False
        assert await dbadmin.database_exists(odd_url)
        found = await afetch(
            odd_url.with_database(dbadmin.MAINTENANCE_DATABASE),
            "SELECT datname FROM pg_database WHERE datname = $1",
            odd_url.database,
        )
        assert found == [(odd_url.database,)]
        assert await dbadmin.database_exists(odd_url.with_database("postgres"))
        conn = await dbadmin.connect(odd_url)
        try:
            assert await conn.fetchval("SELECT current_database()") == odd_url.database
        finally:
            await conn.close()
        assert await dbadmin.drop_database(odd_url) is True
        assert not await dbadmin.database_exists(odd_url)
        assert await dbadmin.drop_database(odd_url) is False
        assert await dbadmin.database_exists(odd_url.with_database("postgres"))

    asyncio.run(scenario())


def test_hostile_name_through_the_cli(odd_url: DatabaseURL) -> None:
    assert f"Created database {odd_url.database!r}." in ok(manage("createdb", url=odd_url))
    assert exists(odd_url)
    assert exists(odd_url.with_database("postgres"))
    assert f"Dropped database {odd_url.database!r}." in ok(manage("dropdb", "--yes", url=odd_url))
    assert not exists(odd_url)


def test_create_and_drop_reject_bad_names(db_url: DatabaseURL) -> None:
    for name in ("", "n" * 64):
        with pytest.raises(CommandError, match="invalid database name"):
            asyncio.run(dbadmin.create_database(db_url.with_database(name)))
        with pytest.raises(CommandError, match="invalid database name"):
            asyncio.run(dbadmin.drop_database(db_url.with_database(name)))


def test_createdb_and_dropdb(scratch_db: DatabaseURL) -> None:
    url = scratch_db.with_database(f"{scratch_db.database}_x")
    asyncio.run(databases.drop(url))
    try:
        assert ok(manage("createdb", url=url)) == f"Created database {url.database!r}.\n"
        assert exists(url)
        assert ok(manage("createdb", url=url)) == f"Database {url.database!r} already exists.\n"

        assert "pass --yes" in error_line(manage("dropdb", url=url))
        assert exists(url)

        assert ok(manage("dropdb", "--yes", url=url)) == f"Dropped database {url.database!r}.\n"
        assert not exists(url)
        assert ok(manage("dropdb", "-y", url=url)) == f"Database {url.database!r} does not exist.\n"
    finally:
        asyncio.run(databases.drop(url))


def test_dropdb_disconnects_sessions(scratch_db: DatabaseURL) -> None:
    async def scenario() -> None:
        holder = await dbadmin.connect(scratch_db)
        try:
            assert await dbadmin.drop_database(scratch_db) is True
        finally:
            await holder.close()
        assert not await dbadmin.database_exists(scratch_db)

    asyncio.run(scenario())


# --- flush and resetdb -------------------------------------------------------------------


def test_flush_empties_tables_but_keeps_the_history(
    scratch_db: DatabaseURL, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("migrate")
    make_table_with_rows(scratch_db)
    emptied = len(table_names(scratch_db) - {"alembic_version"})
    capsys.readouterr()
    call_command("flush", "--yes")
    assert capsys.readouterr().out == f"Emptied {emptied} tables.\n"
    assert fetch(scratch_db, "SELECT count(*) FROM things") == [(0,)]
    assert versions(scratch_db) == [head()]
    execute(scratch_db, "INSERT INTO things (name) VALUES ('c')")
    assert fetch(scratch_db, "SELECT id FROM things") == [(1,)]  # identities restart


def test_flush_needs_yes_off_a_terminal(
    scratch_db: DatabaseURL, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_table_with_rows(scratch_db)
    monkeypatch.setattr(sys, "stdin", _NotATerminal())
    with pytest.raises(CommandError, match="pass --yes"):
        call_command("flush")
    assert fetch(scratch_db, "SELECT count(*) FROM things") == [(2,)]


def test_flush_of_an_empty_database(scratch_db: DatabaseURL) -> None:
    assert asyncio.run(dbadmin.flush(scratch_db)) == []


def test_resetdb(scratch_db: DatabaseURL, capsys: pytest.CaptureFixture[str]) -> None:
    make_table_with_rows(scratch_db)
    call_command("resetdb", "--yes")
    out = capsys.readouterr().out
    assert f"Recreated database {scratch_db.database!r}." in out
    assert "things" not in table_names(scratch_db)
    assert versions(scratch_db) == [head()]


# --- the production guard ----------------------------------------------------------------

PRODUCTION = {"ENVIRONMENT": "production"}


@pytest.mark.parametrize(
    "args",
    [("flush",), ("dropdb",), ("resetdb",), ("rollback",), ("migrate", "base")],
    ids=lambda args: " ".join(args),
)
def test_production_refuses_destruction_unless_forced(
    scratch_db: DatabaseURL, args: tuple[str, ...]
) -> None:
    call_command("migrate")
    make_table_with_rows(scratch_db)

    line = error_line(manage(*args, "--yes", url=scratch_db, env=PRODUCTION))
    assert "refusing" in line
    assert "ENVIRONMENT=production" in line
    assert "--force-production" in line
    assert fetch(scratch_db, "SELECT count(*) FROM things") == [(2,)]
    assert versions(scratch_db) == [head()]

    ok(manage(*args, "--yes", "--force-production", url=scratch_db, env=PRODUCTION))
    if args == ("dropdb",):
        assert not exists(scratch_db)
    elif args == ("flush",):
        assert fetch(scratch_db, "SELECT count(*) FROM things") == [(0,)]
        assert versions(scratch_db) == [head()]
    elif args == ("resetdb",):
        assert "things" not in table_names(scratch_db)
        assert versions(scratch_db) == [head()]
    elif args == ("rollback",):
        down = script_directory().get_revision(head())
        assert down is not None
        assert isinstance(down.down_revision, str | None)  # one parent: a plain rollback
        assert versions(scratch_db) == ([down.down_revision] if down.down_revision else [])
    else:
        assert versions(scratch_db) == []


def test_production_allows_the_safe_commands(scratch_db: DatabaseURL) -> None:
    out = ok(manage("migrate", url=scratch_db, env=PRODUCTION))
    assert "The database is up to date." in out
    assert versions(scratch_db) == [head()]
