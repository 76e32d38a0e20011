"""Benchmark the test plugin: per-worker setup, a warm start, and a 200-test suite.

    uv run python -m bench.testing

1. Per-worker database setup (``databases.clone``) against a bare
   ``CREATE DATABASE ... TEMPLATE`` of the same template, for the real migration history
   and for a synthetic history of 50 revisions (target: within 1.2x, whatever the count).
2. A second run with unchanged migrations runs no migration: time from start to the
   first test.
3. 200 small database tests (3 rows through a factory, then a query) with ``-n 2``: wall
   time, and the plugin's per-test overhead against a raw asyncpg BEGIN; ROLLBACK pair.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from project import db, dbadmin
from project.testing import databases
from project.urls import DatabaseURL

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 7

SYNTHETIC_ENV = """
from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
"""
SYNTHETIC_REVISION = """
from alembic import op
import sqlalchemy as sa
revision = "r{n:03d}"
down_revision = {down!r}
def upgrade():
    op.create_table(
        "synthetic_{n:03d}",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text),
    )
    op.create_index("ix_synthetic_{n:03d}_name", "synthetic_{n:03d}", ["name"])
def downgrade():
    op.drop_table("synthetic_{n:03d}")
"""

SUITE = """
from sqlalchemy import func, select

from apps.tools.factories import ToolFactory
from apps.tools.models import Tool


async def test_{n}(db_session):
    await ToolFactory.create_batch(3)
    assert await db_session.scalar(select(func.count()).select_from(Tool)) == 3
"""

OVERHEAD = """
from sqlalchemy import text


async def test_{n}(db_session):
    await db_session.execute(text("SELECT 1"))
"""

TIMING_CONFTEST = """
import os
import time

import pytest

_times = []
_first = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not _first:
        _first.append(time.time())
    started = time.perf_counter()
    yield
    _times.append(time.perf_counter() - started)


def pytest_sessionfinish(session):
    out = os.environ.get("BENCH_OUT")
    if out and _times:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(f"{out}.{worker}", "w") as f:
            f.write(f"{_first[0]} {sorted(_times)[len(_times) // 2]}\\n")
"""


def synthetic_template(url: DatabaseURL, revisions: int, workdir: Path) -> str:
    """Build a template database migrated through ``revisions`` synthetic revisions."""
    from alembic import command
    from alembic.config import Config

    scripts = workdir / f"synthetic{revisions}"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text(SYNTHETIC_ENV)
    (scripts / "script.py.mako").write_text("")
    for n in range(1, revisions + 1):
        down = f"r{n - 1:03d}" if n > 1 else None
        (scripts / "versions" / f"r{n:03d}.py").write_text(
            SYNTHETIC_REVISION.format(n=n, down=down)
        )
    name = f"test_bench_tpl_synthetic{revisions}"
    target = url.with_database(name)
    asyncio.run(dbadmin.drop_database(target))
    asyncio.run(dbadmin.create_database(target))
    config = Config()
    config.set_main_option("script_location", str(scripts))

    async def migrate() -> None:
        engine = db.create_engine(target, pooled=False)
        async with engine.connect() as conn:

            def upgrade(sync_conn: object) -> None:
                config.attributes["connection"] = sync_conn
                command.upgrade(config, "head")

            await conn.run_sync(upgrade)
            await conn.commit()
        await engine.dispose()

    asyncio.run(migrate())
    return name


def clone_vs_bare(url: DatabaseURL, template: str) -> tuple[float, float]:
    """Return the median seconds of ``databases.clone`` and of a bare CREATE ... TEMPLATE."""

    async def measure() -> tuple[float, float]:
        ours, bare = [], []
        conn = await dbadmin.connect(url.with_database(dbadmin.MAINTENANCE_DATABASE))
        try:
            for _ in range(ROUNDS):
                target = url.with_database("test_bench_bare")
                started = time.perf_counter()
                await conn.execute(f'CREATE DATABASE test_bench_bare TEMPLATE "{template}"')
                bare.append(time.perf_counter() - started)
                await dbadmin.drop_database(target, conn=conn)
                started = time.perf_counter()
                worker = await databases.clone(url.with_database("bench"), template, "gw0")
                ours.append(time.perf_counter() - started)
                await worker.release(keep=False)
        finally:
            await conn.close()
        return statistics.median(ours), statistics.median(bare)

    return asyncio.run(measure())


def run_suite(workdir: Path, body: str, count: int, *args: str) -> tuple[float, list[str]]:
    """Run a generated suite of ``count`` tests; return wall seconds and the timing lines."""
    suite = workdir / f"suite_{abs(hash(body)) % 10_000}"
    suite.mkdir(exist_ok=True)
    (suite / "conftest.py").write_text(TIMING_CONFTEST)
    (suite / "test_generated.py").write_text(
        "\n".join(textwrap.dedent(body).format(n=n) for n in range(count))
    )
    out = suite / "timing"
    env = dict(os.environ, PYTHONPATH=str(ROOT), BENCH_OUT=str(out))
    started = time.perf_counter()
    start_epoch = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "project.testing.plugin", *args],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stdout[-2000:] + result.stderr[-2000:])
    lines = [f"{start_epoch} " + p.read_text().strip() for p in suite.glob("timing.*")]
    for p in suite.glob("timing.*"):
        p.unlink()
    return wall, lines


def raw_begin_rollback(url: DatabaseURL) -> float:
    """Return the median seconds of a raw asyncpg BEGIN; SELECT 1; ROLLBACK."""

    async def measure() -> float:
        conn = await dbadmin.connect(url)
        try:
            times = []
            for _ in range(2000):
                started = time.perf_counter()
                await conn.execute("BEGIN")
                await conn.execute("SELECT 1")
                await conn.execute("ROLLBACK")
                times.append(time.perf_counter() - started)
            return statistics.median(times)
        finally:
            await conn.close()

    return asyncio.run(measure())


def main() -> None:
    url = db.database_url()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # The real template, as the plugin builds it.
        real, _ = asyncio.run(databases.ensure_template(url))
        synthetic = synthetic_template(url, 50, workdir)
        try:
            for label, template in (("real history", real), ("50 revisions", synthetic)):
                ours, bare = clone_vs_bare(url, template)
                print(
                    f"worker setup, {label:<13}: clone {ours * 1000:6.1f} ms, bare CREATE "
                    f"DATABASE TEMPLATE {bare * 1000:6.1f} ms: {ours / bare:.2f}x (target <= 1.2x)"
                )
        finally:
            asyncio.run(dbadmin.drop_database(url.with_database(synthetic)))

        run_suite(workdir, SUITE, 200, "-n", "2")  # warm: the template exists after this
        walls = []
        for _ in range(3):
            wall, lines = run_suite(workdir, SUITE, 200, "-n", "2")
            walls.append(wall)
        first_test = statistics.median(
            float(line.split()[1]) - float(line.split()[0]) for line in lines
        )
        print(f"200 factory tests, -n 2: {statistics.median(walls):.2f} s wall (median of 3)")
        print(f"warm start (no migration run) to first test: {first_test:.2f} s")

        _, lines = run_suite(workdir, OVERHEAD, 200, "-p", "no:xdist")
        per_test = float(lines[0].split()[2])
        raw = raw_begin_rollback(db.database_url())
        print(
            f"per-test cost of a db_session test (setup+call+teardown): {per_test * 1e6:.0f} us; "
            f"raw asyncpg BEGIN/SELECT 1/ROLLBACK {raw * 1e6:.0f} us: {per_test / raw:.1f}x"
        )


if __name__ == "__main__":
    main()
