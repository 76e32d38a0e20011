"""The migration lock: concurrent migrates serialize, and one that cannot get the lock
gives up after MIGRATE_LOCK_TIMEOUT with one line, through manage.py and plain Alembic."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.exceptions import CommandError
from project.migrate.lock import LOCK_KEY, run_online
from tests.project.migrate.support import ROOT, afetch, environment, fetch, head, manage_argv
from tests.support import error_line

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.engine import Connection


def test_concurrent_migrates_serialize(scratch_db: DatabaseURL) -> None:
    env = environment(scratch_db)
    runs = [
        subprocess.Popen(
            manage_argv("migrate"),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [run.communicate(timeout=180) for run in runs]
    for run, (out, err) in zip(runs, results, strict=True):
        assert run.returncode == 0, f"stdout: {out}\nstderr: {err}"
        assert err == ""
    assert fetch(scratch_db, "SELECT version_num FROM alembic_version") == [(head(),)]


PLAIN_ALEMBIC = [
    sys.executable,
    "-m",
    "alembic",
    "-c",
    str(ROOT / "alembic.ini"),
    "upgrade",
    "head",
]


@pytest.mark.parametrize("argv", [manage_argv("migrate"), PLAIN_ALEMBIC], ids=["manage", "alembic"])
async def test_migrate_gives_up_when_the_lock_is_held(
    scratch_db: DatabaseURL, argv: list[str]
) -> None:
    holder = await dbadmin.connect(scratch_db)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=ROOT,
            env=environment(scratch_db, MIGRATE_LOCK_TIMEOUT="1"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
        elapsed = time.monotonic() - started
    finally:
        await holder.close()
    result = subprocess.CompletedProcess([], process.returncode or 0, out.decode(), err.decode())
    if argv is PLAIN_ALEMBIC:  # Alembic's own CLI prints the error its way
        assert result.returncode != 0
        assert "another migration is running" in result.stderr
    else:
        line = error_line(result)
        assert "another migration is running" in line
        assert "MIGRATE_LOCK_TIMEOUT" in line
    assert elapsed >= 1
    assert (
        await afetch(scratch_db, "SELECT 1 FROM pg_tables WHERE tablename = 'alembic_version'")
        == []
    )


def test_run_online_gives_alembics_errors_as_one_line(scratch_db: DatabaseURL) -> None:
    from alembic.util import CommandError as AlembicCommandError

    def work(config: Config, connection: Connection) -> None:
        raise AlembicCommandError("Can't locate revision identified by 'x'\nmore detail")

    with pytest.raises(CommandError) as caught:
        run_online(work, lock=True, url=scratch_db)
    assert str(caught.value) == "Can't locate revision identified by 'x'"
    assert run_online(lambda config, connection: 1, url=scratch_db) == 1
