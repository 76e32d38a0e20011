"""Hostile and bad input: one line, the right exit status, no traceback, no password,
and nothing written. SQL-shaped strings are quoted or rejected, never executed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path

import pytest
from sqlalchemy.exc import StatementError

from apps.tools.models import Tool
from project import conf
from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.enums import ExecutionStatus, NodeType, ToolType
from project.orm.types import EnumString
from tests.support import copy_project

PASSWORD = "Hunter2-Secret"  # trust auth accepts it; it must never be printed
INJECTION = "x'; DROP TABLE tools; --"


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]
    status: int
    says: str
    env: dict[str, str] = field(default_factory=dict)
    env_file: str | None = None  # contents of a .env file given with --env-file


CASES: dict[str, Case] = {
    # settings values
    "pool size not a number": Case(("check",), 1, "DB_POOL_SIZE must be", {"DB_POOL_SIZE": "ten"}),
    "negative overflow": Case(("check",), 1, "DB_MAX_OVERFLOW", {"DB_MAX_OVERFLOW": "-3"}),
    "negative timeout": Case(("check",), 1, "DB_POOL_TIMEOUT", {"DB_POOL_TIMEOUT": "-1"}),
    "recycle not a number": Case(("check",), 1, "DB_POOL_RECYCLE", {"DB_POOL_RECYCLE": "1h"}),
    "pgbouncer not a bool": Case(("check",), 1, "DB_PGBOUNCER", {"DB_PGBOUNCER": "sometimes"}),
    "pre-ping not a bool": Case(("check",), 1, "DB_POOL_PRE_PING", {"DB_POOL_PRE_PING": "perhaps"}),
    "unknown environment": Case(("check",), 1, "ENVIRONMENT", {"ENVIRONMENT": "prod; rm -rf"}),
    "unknown url scheme": Case(
        ("check",), 1, "unsupported scheme 'mysql'", {"DATABASE_URL": f"mysql://u:{PASSWORD}@h/db"}
    ),
    "url without database": Case(
        ("check",), 1, "names no database", {"DATABASE_URL": f"postgresql://u:{PASSWORD}@h:5432"}
    ),
    "url bad port": Case(
        ("check",), 1, "bad port", {"DATABASE_URL": f"postgresql://u:{PASSWORD}@h:port/db"}
    ),
    "direct url unknown scheme": Case(
        ("migrate",), 1, "DATABASE_DIRECT_URL", {"DATABASE_DIRECT_URL": f"redis://:{PASSWORD}@h/0"}
    ),
    # .env files
    "malformed env file": Case(("check",), 1, "line 2: expected KEY=value", env_file='A=1\nB="x\n'),
    "env file with bad value": Case(
        ("check",), 1, "DB_POOL_SIZE must be", env_file=f"DB_POOL_SIZE=0\nX={PASSWORD}\n"
    ),
    "missing env file": Case(("--env-file", "/nonexistent/.env", "check"), 1, "does not exist"),
    # CLI arguments
    "unknown command": Case(("migrat",), 2, "Did you mean 'migrate'?"),
    "steps not a number": Case(("rollback", "--steps", "two"), 2, "'--steps'"),
    "negative count": Case(("seed", "--count", "-5"), 2, "'--count'"),
    "random seed not a number": Case(("seed", "--random-seed", "abc"), 2, "'--random-seed'"),
    "destructive off a terminal": Case(("flush",), 1, "pass --yes"),
    "destructive in production": Case(
        ("dropdb", "--yes"), 1, "refusing to drop", {"ENVIRONMENT": "production"}
    ),
    # revision identifiers
    "unknown revision": Case(("migrate", "deadbeef"), 1, "unknown revision 'deadbeef'"),
    "sql-shaped revision": Case(("migrate", INJECTION), 1, "unknown revision"),
    "path-shaped revision": Case(("sqlmigrate", "../../etc/passwd"), 1, "unknown revision"),
    # app and seeder names
    "sql-shaped seed app": Case(("seed", INJECTION), 1, "no seeders in app"),
    "unknown seed app": Case(("seed", "tool"), 1, "no seeders in app 'tool'"),
    "sql-shaped startapp": Case(("startapp", INJECTION), 1, "invalid app name"),
    "path-shaped startapp": Case(("startapp", "../escape"), 1, "invalid app name"),
    "existing startapp": Case(("startapp", "tools"), 1, "already exists"),
    # database names reach SQL only quoted; an impossible one is refused
    "over-long database name": Case(
        ("createdb",), 1, "invalid database name", {"DBNAME": "x" * 80}
    ),
}


def snapshot(url: DatabaseURL) -> tuple[object, ...]:
    """Return the row count of every table, the migration version and the databases."""

    async def take() -> tuple[object, ...]:
        conn = await dbadmin.connect(url)
        try:
            tables = [
                r[0]
                for r in await conn.fetch(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
                )
            ]
            counts = [await conn.fetchval(f'SELECT count(*) FROM "{t}"') for t in tables]
            version = await conn.fetchval("SELECT version_num FROM alembic_version")
            # Only the databases this test could touch: other runs share the server.
            databases = sorted(
                r[0]
                for r in await conn.fetch(
                    "SELECT datname FROM pg_database WHERE datname = ANY($1::text[])",
                    ["postgres", url.database, "x" * 63],
                )
            )
            return (tuple(zip(tables, counts, strict=True)), version, tuple(databases))
        finally:
            await conn.close()

    return asyncio.run(take())


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_project(tmp_path_factory.mktemp("hostile") / "project")


def manage(project: Path, url: str, case: Case, tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in conf.VARIABLES}
    env.update({"DATABASE_URL": url, **case.env})
    args = list(case.args)
    if case.env_file is not None:
        path = tmp / "hostile.env"
        path.write_text(case.env_file)
        args = ["--env-file", str(path), *args]
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_and_writes_nothing(
    name: str, scratch_db: DatabaseURL, project: Path, tmp_path: Path
) -> None:
    case = CASES[name]
    url = replace(scratch_db, password=PASSWORD)
    for setup in ("migrate",), ("seed", "tools"):  # a database with something to lose
        done = manage(project, url.render(hide_password=False), Case(setup, 0, ""), tmp_path)
        assert done.returncode == 0, done.stderr
    if "DBNAME" in case.env:
        url = url.with_database(case.env["DBNAME"])
    before = snapshot(scratch_db)
    apps_before = sorted(p.name for p in (project / "apps").iterdir())
    result = manage(project, url.render(hide_password=False), case, tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == case.status, output
    assert PASSWORD not in output
    assert "Traceback" not in output
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    assert case.says in errors[0], errors[0]
    if case.status == 1:
        assert result.stderr.strip() == errors[0]  # that one line is all
    assert snapshot(scratch_db) == before
    assert sorted(p.name for p in (project / "apps").iterdir()) == apps_before


def test_sql_shaped_database_names_are_quoted_not_executed(scratch_db: DatabaseURL) -> None:
    odd = scratch_db.with_database(f'test_{INJECTION}"; DROP DATABASE postgres; --')

    async def scenario() -> None:
        assert await dbadmin.create_database(odd)
        assert await dbadmin.database_exists(odd)
        assert await dbadmin.database_exists(odd.with_database("postgres"))
        assert await dbadmin.drop_database(odd)
        assert not await dbadmin.database_exists(odd)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("enum", "value"),
    [(ToolType, "hammer"), (NodeType, "'; DROP TABLE nodes; --"), (ExecutionStatus, "")],
)
def test_bad_enum_values_are_refused_in_one_line(enum: type[StrEnum], value: str) -> None:
    column: EnumString[StrEnum] = EnumString(enum)
    with pytest.raises(ValueError, match=f"is not a valid {enum.__name__}") as caught:
        column.coerce(value)
    assert len(str(caught.value).splitlines()) == 1


async def test_bad_enum_value_never_reaches_the_database(db_session: object) -> None:
    from sqlalchemy import func, select
    from sqlalchemy.ext.asyncio import AsyncSession

    assert isinstance(db_session, AsyncSession)
    db_session.add(Tool(name="bad", tool_type="hammer"))
    with pytest.raises(StatementError, match="'hammer' is not a valid ToolType"):
        await db_session.flush()
    await db_session.rollback()
    assert await db_session.scalar(select(func.count()).select_from(Tool)) == 0
