"""Benchmark migrations under load and the migration linter, against their peers in one run.

    uv run python -m bench.migrate

- The longest wait of an application query (``SELECT count(*) FROM tools`` every 50 ms)
  while a transaction holds a lock on ``tools`` for 5 s and a revision alters it:
  ``manage.py migrate`` with ``MIGRATE_DDL_LOCK_TIMEOUT=1`` (target: at most 1.5 s) vs
  plain ``alembic upgrade head`` without a lock timeout (the peer: stock Alembic sets
  none, so ``MIGRATE_DDL_LOCK_TIMEOUT=0`` here), whose ALTER queues every query behind it.
- ``manage.py lintmigrations`` over a synthetic history of 50 revisions vs
  ``manage.py migrate --sql`` rendering the same history (target: at most 2x).
- ``manage.py migrate`` at head vs ``alembic upgrade head`` at head, as ``bench.cli``
  measures it (target: at most 1.1x of before; its ratio to Alembic is printed).

Each run works on a copy of the project in a temporary folder and a ``bench_`` database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import refuse_production
from project import db
from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from tests.support import copy_project

ROOT = Path(__file__).resolve().parent.parent
HOLD = 5.0  # seconds the blocking transaction lives
RUNS = 5


def add_revision(project: Path, down: str, upgrade: str, name: str = "bench") -> str:
    """Write a revision doing ``upgrade`` after ``down``; return its id."""
    rev = uuid.uuid4().hex[:12]
    body = "\n    ".join(upgrade.splitlines())
    (project / "migrations" / "versions" / f"20990101_000000_{rev}_{name}.py").write_text(
        f'"""{name}"""\n\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f"revision = {rev!r}\ndown_revision = {down!r}\nbranch_labels = None\n"
        f"depends_on = None\n\n\ndef upgrade() -> None:\n    {body}\n\n\n"
        "def downgrade() -> None:\n    pass\n"
    )
    return rev


def head() -> str:
    """Return the repository's head revision (the copy starts from the same)."""
    from project.migrate.config import script_directory

    found = script_directory().get_current_head()
    assert found is not None
    return found


def environ(url: DatabaseURL, **extra: str) -> dict[str, str]:
    return dict(os.environ, DATABASE_URL=url.render(hide_password=False), **extra)


async def fresh(url: DatabaseURL) -> None:
    await dbadmin.drop_database(url)
    await dbadmin.create_database(url)


async def blocked_wait(project: Path, url: DatabaseURL, argv: list[str], **env: str) -> float:
    """Return the longest application query while ``argv`` alters ``tools`` behind a
    transaction that holds a lock on it for HOLD seconds."""
    holder = await dbadmin.connect(url)
    prober = await dbadmin.connect(url)
    waits: list[float] = []
    try:
        await holder.execute("BEGIN")
        await holder.execute("SELECT count(*) FROM tools")
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=project,
            env=environ(url, **env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

        async def release() -> None:
            await asyncio.sleep(HOLD)  # a bound: the holder always ends
            await holder.execute("COMMIT")

        async def probe() -> None:
            while process.returncode is None:
                began = time.monotonic()
                await prober.fetchval("SELECT count(*) FROM tools")
                waits.append(time.monotonic() - began)
                with contextlib.suppress(TimeoutError):  # still running: probe again
                    await asyncio.wait_for(process.wait(), timeout=0.05)

        releasing = asyncio.create_task(release())
        await asyncio.wait_for(probe(), timeout=60)
        await releasing
        if process.returncode is None:
            process.kill()
        _, err = await process.communicate()
        if process.returncode != 0:
            raise SystemExit(f"{argv[-2:]} failed: {err.decode().strip()}")
    finally:
        await holder.close()
        await prober.close()
    return max(waits)


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Return the median wall time of RUNS runs of ``argv``."""
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def synthetic_history(project: Path, down: str, count: int = 50) -> None:
    """Add ``count`` revisions of the usual kinds (tables with indexes, columns, raw SQL,
    concurrent indexes), all of which the linter passes."""
    for n in range(count):
        kind = n % 4
        if kind == 0:
            body = (
                f"op.create_table('syn_{n}', sa.Column('id', sa.Integer, primary_key=True), "
                "sa.Column('name', sa.String(50)))\n"
                f"op.create_index('ix_syn_{n}_name', 'syn_{n}', ['name'])"
            )
        elif kind == 1:
            body = f"op.add_column('syn_{n - 1}', sa.Column('note', sa.Text(), nullable=True))"
        elif kind == 2:
            body = f"op.execute('ALTER TABLE syn_{n - 2} ALTER COLUMN name TYPE varchar(80)')"
        else:
            body = (
                "with op.get_context().autocommit_block():\n"
                f"    op.create_index('ix_syn_{n - 3}_note', 'syn_{n - 3}', ['note'], "
                "postgresql_concurrently=True)"
            )
        down = add_revision(project, down, body, f"syn_{n}")


def report(name: str, ours: float, peer: float, unit: str, verdict: str) -> None:
    scale = 1000 if unit == "ms" else 1
    print(f"{name:<34} {ours * scale:8.2f} {unit} vs {peer * scale:8.2f} {unit} peer: {verdict}")


def main() -> None:
    """Run the three measurements and print one line each."""
    refuse_production()
    url = db.database_url().with_database("bench_migrate")
    manage = [sys.executable, "manage.py"]
    alembic = [sys.executable, "-m", "alembic", "-c", "alembic.ini"]
    with tempfile.TemporaryDirectory(prefix="bench_migrate_") as tmp:
        project = copy_project(Path(tmp) / "project")
        base_head = head()
        try:
            # 1. A blocked ALTER: ours retries under a 1 s lock timeout; the peer waits.
            add_revision(
                project,
                base_head,
                "op.add_column('tools', sa.Column('note', sa.Text(), nullable=True))",
                "blocked",
            )
            waits = {}
            for label, argv, env in (
                ("manage.py migrate", [*manage, "migrate"], {"MIGRATE_DDL_LOCK_TIMEOUT": "1"}),
                (
                    "alembic upgrade",
                    [*alembic, "upgrade", "head"],
                    {"MIGRATE_DDL_LOCK_TIMEOUT": "0"},
                ),
            ):
                asyncio.run(fresh(url))
                subprocess.run(
                    [*manage, "migrate", base_head],
                    cwd=project,
                    env=environ(url),
                    check=True,
                    capture_output=True,
                )
                waits[label] = asyncio.run(blocked_wait(project, url, argv, **env))
            ours, peer = waits["manage.py migrate"], waits["alembic upgrade"]
            report(
                "longest app query, blocked migrate",
                ours,
                peer,
                "s",
                f"{'ok' if ours <= 1.5 else 'MISSED'} (target <= 1.5 s; the peer waits "
                f"for the {HOLD:g} s holder)",
            )

            # 2. The linter over 50 revisions vs rendering them.
            for path in (project / "migrations" / "versions").glob("20990101_*"):
                path.unlink()
            synthetic_history(project, base_head)
            asyncio.run(fresh(url))
            env = environ(url)
            lint = timed([*manage, "lintmigrations"], project, env)
            render = timed([*manage, "migrate", "--sql"], project, env)
            check = subprocess.run(
                [*manage, "lintmigrations"], cwd=project, env=env, capture_output=True, text=True
            )
            ratio = lint / render
            report(
                "lintmigrations, 53 revisions",
                lint,
                render,
                "ms",
                f"{ratio:.2f}x of migrate --sql (target <= 2x) "
                f"{'ok' if ratio <= 2 else 'MISSED'}; exit {check.returncode}",
            )

            # 3. A no-op migrate: the timeouts and the linter add nothing at head.
            subprocess.run(
                [*manage, "migrate"], cwd=project, env=env, check=True, capture_output=True
            )
            noop = timed([*manage, "migrate"], project, env)
            stock = timed([*alembic, "upgrade", "head"], project, env)
            report(
                "no-op migrate",
                noop,
                stock,
                "ms",
                f"{noop / stock:.2f}x of alembic upgrade head (bench.cli: 0.19x before)",
            )
        finally:
            asyncio.run(dbadmin.drop_database(url))


if __name__ == "__main__":
    main()
