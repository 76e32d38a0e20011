"""``migrate`` and ``seed`` killed at random points leave the before or the after state."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from tests.support import ROOT, copy_project, write_revision

TRIALS = 5
SLOW_TABLES = 30


def environment(url: DatabaseURL) -> dict[str, str]:
    return dict(os.environ, DATABASE_URL=url.render(hide_password=False))


def run(cwd: Path, url: DatabaseURL, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env=environment(url),
        capture_output=True,
        text=True,
        timeout=300,
    )


def kill_after(cwd: Path, url: DatabaseURL, delay: float, *args: str) -> int:
    """Start ``manage.py args`` and SIGKILL it after ``delay`` seconds (if still running)."""
    child = subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env=environment(url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(delay)
    child.send_signal(signal.SIGKILL)
    return child.wait(timeout=60)


def query(url: DatabaseURL, sql: str) -> list[tuple[object, ...]]:
    async def go() -> list[tuple[object, ...]]:
        conn = await dbadmin.connect(url)
        try:
            return [tuple(row) for row in await conn.fetch(sql)]
        finally:
            await conn.close()

    return asyncio.run(go())


def test_killed_migrate_leaves_before_or_after(scratch_db: DatabaseURL, tmp_path: Path) -> None:
    project = copy_project(tmp_path / "project")
    assert run(project, scratch_db, "migrate").returncode == 0
    before = query(scratch_db, "SELECT version_num FROM alembic_version")
    body = "\n    ".join(
        f"op.create_table('slow_{n}', sa.Column('id', sa.Integer, primary_key=True))\n    "
        "op.execute('SELECT pg_sleep(0.05)')"
        for n in range(SLOW_TABLES)
    )
    drops = "\n    ".join(f"op.drop_table('slow_{n}')" for n in range(SLOW_TABLES))
    revision = write_revision(project, "slow", str(before[0][0]), body, drops)
    seen = set()
    rng = random.Random(7)
    for _ in range(TRIALS):
        kill_after(project, scratch_db, rng.uniform(0.3, 3.0), "migrate")
        version = query(scratch_db, "SELECT version_num FROM alembic_version")
        slow = query(scratch_db, "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'slow_%'")
        if version == [(revision,)]:
            assert slow == [(SLOW_TABLES,)]
            seen.add("after")
            assert run(project, scratch_db, "rollback", "--yes").returncode == 0
        else:
            assert version == before
            assert slow == [(0,)]
            seen.add("before")
    assert "before" in seen  # at least one kill landed mid-revision


def test_killed_seed_leaves_before_or_after(scratch_db: DatabaseURL) -> None:
    assert run(ROOT, scratch_db, "migrate").returncode == 0
    count = 200_000
    tables = ["tools", "workflows", "workflow_executions", "node_executions"]
    rng = random.Random(11)
    seen = set()
    for _ in range(3):
        kill_after(ROOT, scratch_db, rng.uniform(0.5, 2.0), "seed", "--count", str(count))
        counts = [query(scratch_db, f"SELECT count(*) FROM {t}")[0][0] for t in tables]
        if counts[-1]:
            assert counts == [8, 200, 20_000, count]
            seen.add("after")
            assert run(ROOT, scratch_db, "flush", "--yes").returncode == 0
        else:
            assert counts == [0, 0, 0, 0]
            seen.add("before")
    assert "before" in seen
