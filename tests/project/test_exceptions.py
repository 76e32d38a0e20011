"""The exception family and its one reporting path: one line per error, the driver's errors
known by type and SQLSTATE, no password in any of it, no database library imported."""

from __future__ import annotations

import ast
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from project import conf
from project.conf import get_settings, override_settings, settings_from
from project.db import target
from project.db.url import DatabaseURL
from project.exceptions import (
    CommandError,
    Conflict,
    DatabaseUnavailable,
    NotFound,
    ProjectError,
    describe,
    driver_error,
    first_line,
    is_connection_failure,
    scrub,
    sqlstate,
    summary,
)
from tests.support import run_python

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def secret_settings() -> Iterator[None]:
    previous = get_settings()
    override_settings(
        settings_from(
            {
                "DATABASE_URL": "postgresql://app:pooled-secret@pgbouncer:6432/app",
                "DATABASE_DIRECT_URL": "postgresql://app:direct-secret@db:5432/app",
            }
        )
    )
    try:
        yield
    finally:
        override_settings(previous)


@pytest.fixture
async def connection(db_engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with db_engine.connect() as conn:
        yield conn


def _engine(url: DatabaseURL) -> AsyncEngine:
    return create_async_engine(url.to_sqlalchemy())


# --- the family and its one line -------------------------------------------------------


def test_scrub_hides_the_password_of_every_configured_url(secret_settings: None) -> None:
    text = "failed: pooled-secret then direct-secret"
    assert scrub(text) == "failed: *** then ***"


def test_scrub_hides_the_password_of_the_url_use_database_chose(secret_settings: None) -> None:
    before = target.chosen()
    target.choose(DatabaseURL.parse("postgresql://test:chosen-secret@127.0.0.1:5432/test_x"))
    try:
        assert scrub("failed: chosen-secret") == "failed: ***"
    finally:
        target.choose(before)


def test_scrub_leaves_text_without_secrets_alone(secret_settings: None) -> None:
    assert scrub("relation tools does not exist") == "relation tools does not exist"


def test_one_line_summaries() -> None:
    assert first_line("\n\n  first\nsecond") == "first"
    assert summary(CommandError("bad\nmore")) == "CommandError: bad"
    assert summary(CommandError()) == "CommandError"


def test_describe_says_a_project_error_in_its_own_first_line() -> None:
    assert describe(CommandError("first\nsecond")) == "first"
    assert describe(NotFound()) == "NotFound"  # never an empty line
    assert describe(ValueError("first\nsecond")) == "ValueError: first"
    assert describe(RuntimeError()) == "RuntimeError"


def test_describe_hides_every_configured_password(secret_settings: None) -> None:
    assert describe(CommandError("login as direct-secret failed")) == "login as *** failed"
    assert describe(RuntimeError("pooled-secret")) == "RuntimeError: ***"


def test_every_error_of_the_project_is_in_the_family() -> None:
    from project.db.concurrency import ConflictError
    from project.db.replicas import ReadOnlySessionError
    from project.factories.rows import Unsupported
    from project.seeding import SeedError
    from project.seeding.fixtures import FixtureError

    for error in (ReadOnlySessionError, Unsupported, SeedError, FixtureError):
        assert issubclass(error, ProjectError)
    assert issubclass(ConflictError, Conflict)  # a retried transaction that gave up: 409


# --- driver errors by type and SQLSTATE ------------------------------------------------


async def test_a_refused_statement_is_the_drivers_error_in_one_line(
    connection: AsyncConnection,
) -> None:
    with pytest.raises(exc.ProgrammingError) as refused:
        await connection.execute(text("select * from no_such_table_here"))
    assert isinstance(driver_error(refused.value), asyncpg.UndefinedTableError)
    assert sqlstate(refused.value) == "42P01"
    assert not is_connection_failure(refused.value)
    assert describe(refused.value) == (
        'UndefinedTableError: relation "no_such_table_here" does not exist'
    )


async def test_a_violated_key_keeps_its_detail_out_of_the_line(
    connection: AsyncConnection,
) -> None:
    await connection.execute(text("create temporary table keyed (id int primary key)"))
    with pytest.raises(exc.IntegrityError) as refused:
        await connection.execute(text("insert into keyed values (1), (1)"))
    assert sqlstate(refused.value) == "23505"
    assert "already exists" in str(driver_error(refused.value))  # DETAIL: Key (id)=(1) ...
    assert describe(refused.value) == (
        'UniqueViolationError: duplicate key value violates unique constraint "keyed_pkey"'
    )


async def test_a_missing_database_through_sqlalchemy_suggests_createdb(
    db_url: DatabaseURL,
) -> None:
    engine = _engine(db_url.with_database("test_h_no_such_database"))
    try:
        with pytest.raises(exc.DBAPIError) as missing:
            async with engine.connect():
                pass  # pragma: no cover - the connection is refused
    finally:
        await engine.dispose()
    assert sqlstate(missing.value) == "3D000"
    assert is_connection_failure(missing.value)
    described = describe(missing.value)
    assert described.startswith("cannot connect to ")
    assert described.endswith(
        "database \"test_h_no_such_database\" does not exist; create it with 'manage.py createdb'"
    )


async def test_an_unknown_role_is_a_connection_failure(db_url: DatabaseURL) -> None:
    from project.db import admin as dbadmin

    with pytest.raises(asyncpg.PostgresError) as refused:
        await dbadmin.connect(replace(db_url, username="test_h_nobody", password=None))
    assert sqlstate(refused.value) == "28000"  # invalid_authorization_specification
    assert is_connection_failure(refused.value)
    assert describe(refused.value).startswith("cannot connect to ")
    assert describe(refused.value).endswith('role "test_h_nobody" does not exist')


async def test_a_connection_the_server_closed_is_a_connection_failure(
    db_engine: AsyncEngine, connection: AsyncConnection
) -> None:
    pid = await connection.scalar(text("select pg_backend_pid()"))
    async with db_engine.connect() as other:
        await other.execute(text("select pg_terminate_backend(:pid)"), {"pid": pid})

    async def until_lost() -> None:
        for _ in range(50):  # the termination reaches the socket a moment later
            await connection.execute(text("select pg_sleep(0.02)"))

    with pytest.raises(exc.DBAPIError) as lost:
        await until_lost()
    # asyncpg says "connection is closed" (no SQLSTATE) or 08003, by timing; SQLAlchemy
    # invalidates the connection either way.
    assert lost.value.connection_invalidated
    assert is_connection_failure(lost.value)
    assert describe(lost.value).startswith("cannot connect to ")


def test_connection_sqlstates_and_socket_errors_are_connection_failures() -> None:
    for refused in (
        asyncpg.ConnectionDoesNotExistError("closed in the middle of operation"),  # 08003
        asyncpg.InvalidPasswordError("password authentication failed"),  # 28P01
        asyncpg.CannotConnectNowError("the database system is starting up"),  # 57P03
        asyncpg.AdminShutdownError("terminating connection"),  # 57P01
        ConnectionRefusedError(111, "Connection refused"),
        DatabaseUnavailable("the embedded PostgreSQL did not become ready"),
    ):
        assert is_connection_failure(refused), refused
    for other in (
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),  # 57014
        asyncpg.UndefinedTableError("relation does not exist"),
        FileNotFoundError(2, "No such file or directory", "out.json"),  # names a file
        ValueError("x"),
    ):
        assert not is_connection_failure(other), other
    assert sqlstate(ValueError("x")) is None
    assert driver_error(ValueError("x")).args == ("x",)


# --- what reporting costs and who may ask -----------------------------------------------

_LAZY_PROBE = """
import json, sys
from project.exceptions import CommandError, describe, is_connection_failure, sqlstate

lines = [
    describe(CommandError("bad")),
    describe(ValueError("worse")),
    describe(ConnectionRefusedError(111, "Connection refused")),
]
print(json.dumps({
    "lines": lines,
    "sqlstate": sqlstate(ValueError()),
    "connection": is_connection_failure(ValueError()),
    "loaded": [m for m in ("sqlalchemy", "asyncpg") if m in sys.modules],
}))
"""


def test_reporting_imports_no_database_library() -> None:
    env = {k: v for k, v in os.environ.items() if k not in conf.VARIABLES}
    env["DATABASE_URL"] = "postgresql://app:lazy-secret@db:5432/app"
    result = run_python("-c", _LAZY_PROBE, env=env)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["lines"] == [
        "bad",
        "ValueError: worse",
        "cannot connect to postgresql+asyncpg://app:***@db:5432/app: [Errno 111] "
        "Connection refused",
    ]
    assert found["sqlstate"] is None
    assert found["connection"] is False
    assert found["loaded"] == []
    # Settings that do not load leave the database unnamed, and the line still one line.
    env["DB_POOL_SIZE"] = "many"
    result = run_python("-c", _LAZY_PROBE, env=env)
    assert result.returncode == 0, result.stderr
    lines = json.loads(result.stdout)["lines"]
    assert lines[2] == "cannot connect to the database: [Errno 111] Connection refused"


def _imports_management(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(
            "project.management"
        ):
            return True
        if isinstance(node, ast.Import) and any(
            alias.name.startswith("project.management") for alias in node.names
        ):
            return True
    return False


def test_nothing_below_the_cli_imports_it() -> None:
    below = [
        path
        for folder in ("project", "apps")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "management" not in path.relative_to(ROOT).parts
    ]
    upward = {str(path.relative_to(ROOT)) for path in below if _imports_management(path)}
    assert upward == set()
