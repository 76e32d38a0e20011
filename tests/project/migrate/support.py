"""What the migration tests share that is not a fixture: ``manage.py`` run on one database
with no other setting from the environment, a command's output in process, standard input
on and off a terminal, and reads of what the database holds afterwards."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from project import conf
from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.management import call_command
from project.migrate import commands as migrations
from project.migrate.config import script_directory
from tests.support import run_manage

ROOT = Path(__file__).resolve().parents[3]
VERSIONS = ROOT / "migrations" / "versions"
PASSWORD = "S3cretPw"
SETTING_VARIABLES = conf.VARIABLES


def environment(url: DatabaseURL | str, **extra: str) -> dict[str, str]:
    """Return the process environment with only the given settings."""
    environ = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    if isinstance(url, DatabaseURL):
        url = (url if url.password else replace(url, password=PASSWORD)).render(hide_password=False)
    environ["DATABASE_URL"] = url
    environ.update(extra)
    return environ


def manage_argv(*args: str) -> list[str]:
    """Return the argv of ``python manage.py ARGS``."""
    return [sys.executable, "manage.py", *args]


def manage(
    *args: str, url: DatabaseURL | str, cwd: Path = ROOT, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` as a real process, off a terminal, on ``url``."""
    result = run_manage(*args, env=environment(url, **(env or {})), cwd=cwd)
    assert PASSWORD not in result.stdout + result.stderr
    return result


async def afetch(url: DatabaseURL, query: str) -> list[tuple[Any, ...]]:
    """Run ``query`` on ``url`` in a connection of its own."""
    conn = await dbadmin.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(query)]
    finally:
        await conn.close()


def fetch(url: DatabaseURL, query: str) -> list[tuple[Any, ...]]:
    """Run ``query`` on ``url`` in a connection of its own, from sync code."""
    return asyncio.run(afetch(url, query))


def tables(url: DatabaseURL) -> set[str]:
    """Return the tables of the public schema."""
    rows = fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row[0] for row in rows}


def versions(url: DatabaseURL) -> list[str]:
    """Return the database's revisions, from its version table."""
    if "alembic_version" not in tables(url):
        return []
    return sorted(row[0] for row in fetch(url, "SELECT version_num FROM alembic_version"))


def head() -> str:
    """Return the repository's single head revision."""
    found = script_directory().get_current_head()
    assert found is not None
    return found


def all_revisions() -> list[str]:
    """Return every revision, oldest first, as showmigrations lists them."""
    return [m.revision for m in migrations.showmigrations()]


def output(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run a command in process; return what it printed."""
    call_command(*args)
    return capsys.readouterr().out


class NotATerminal:
    """Standard input off a terminal: prompts refuse instead of asking."""

    def isatty(self) -> bool:
        return False


class Terminal(io.StringIO):
    """Standard input on a terminal, answering the prompts with what it holds."""

    def isatty(self) -> bool:
        return True
