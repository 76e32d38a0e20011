"""Benchmark ``loaddata`` against asyncpg ``executemany``, and fixtures' peak memory.

    uv run python -m bench.fixtures [--rows 100000] [--large 1000000]

- rows/s of ``loaddata`` of ``--rows`` node runs (a table with two foreign keys) into a
  database holding their parents, against asyncpg ``executemany`` of the same rows into
  the same table in the same run (target: at least 40%);
- peak memory (max RSS) of the ``manage.py dumpdata`` and ``manage.py loaddata``
  processes for a database seeded with ``--large`` against ``--rows`` node runs
  (target: at most 2x). ``--large 0`` skips it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.common import peak_rss_mib, refuse_production
from project import db
from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.seeding import fixtures

ROOT = Path(__file__).resolve().parent.parent


def manage(url: DatabaseURL, *args: str) -> float:
    """Run ``manage.py`` on ``url`` in a child; return its peak RSS in MiB."""
    env = dict(os.environ, DATABASE_URL=url.render(hide_password=False))
    return peak_rss_mib(str(ROOT / "manage.py"), list(args), env, str(ROOT))


async def fresh(url: DatabaseURL) -> None:
    """Drop and recreate ``url``'s database (a bench_ one)."""
    assert url.database.startswith("bench_")
    await dbadmin.drop_database(url)
    await dbadmin.create_database(url)


async def executemany_rows_per_s(url: DatabaseURL, source: DatabaseURL) -> float:
    """Insert the source's node runs into ``url`` with executemany, rolled back."""
    read = await dbadmin.connect(source)
    rows = await read.fetch("SELECT * FROM node_executions ORDER BY id")
    columns = list(rows[0].keys())
    await read.close()
    conn = await dbadmin.connect(url)
    try:
        for kind in ("json", "jsonb"):  # the values arrive as text, go back as text
            await conn.set_type_codec(kind, encoder=str, decoder=str, schema="pg_catalog")
        placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        transaction = conn.transaction()
        await transaction.start()
        started = time.perf_counter()
        await conn.executemany(
            f"INSERT INTO node_executions ({', '.join(columns)}) VALUES ({placeholders})",
            [tuple(row) for row in rows],
        )
        seconds = time.perf_counter() - started
        await transaction.rollback()
        return len(rows) / seconds
    finally:
        await conn.close()


def memory(
    source: DatabaseURL, target: DatabaseURL, rows: int, folder: Path
) -> tuple[float, float]:
    """Seed ``rows`` node runs, dump them all and load them into an empty database;
    return the peak RSS of dumpdata and of loaddata."""
    asyncio.run(fresh(source))
    asyncio.run(fresh(target))
    manage(source, "migrate")
    manage(target, "migrate")
    manage(source, "seed", "--count", str(rows), "--random-seed", "1")
    path = folder / f"all-{rows}.jsonl.gz"
    dumped = manage(source, "dumpdata", "-o", str(path))
    loaded = manage(target, "loaddata", str(path))
    return dumped, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    options = parser.parse_args()
    refuse_production()
    base = db.database_url()
    source, target = (
        base.with_database("bench_fixtures_src"),
        base.with_database("bench_fixtures_dst"),
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            asyncio.run(fresh(source))
            asyncio.run(fresh(target))
            manage(source, "migrate")
            manage(target, "migrate")
            manage(source, "seed", "--count", str(options.rows), "--random-seed", "1")
            parents, runs = folder / "parents.jsonl", folder / "runs.jsonl"
            manage(
                source,
                "dumpdata",
                "tools",
                "agents",
                "workflows",
                "executions.WorkflowExecution",
                "-o",
                str(parents),
            )
            manage(source, "dumpdata", "executions.NodeExecution", "-o", str(runs))
            manage(target, "loaddata", str(parents))
            baseline = asyncio.run(executemany_rows_per_s(target, source))

            async def timed() -> tuple[int, float]:
                started = time.perf_counter()
                report = await fixtures.load(target, [runs])
                return report.records, time.perf_counter() - started

            count, seconds = asyncio.run(timed())
            ours = count / seconds
            print(
                f"loaddata of {count:,} node_executions: {ours:,.0f} rows/s, asyncpg "
                f"executemany {baseline:,.0f} rows/s: {ours / baseline:.0%} (target >= 40%)"
            )
            if options.large:
                small = memory(source, target, options.rows, folder)
                large = memory(source, target, options.large, folder)
                for name, a, b in (
                    ("dumpdata", small[0], large[0]),
                    ("loaddata", small[1], large[1]),
                ):
                    print(
                        f"{name} peak RSS: {options.rows:,} node runs {a:.0f} MiB, "
                        f"{options.large:,}: {b:.0f} MiB; ratio {b / a:.2f} (target <= 2)"
                    )
        finally:
            asyncio.run(dbadmin.drop_database(source))
            asyncio.run(dbadmin.drop_database(target))


if __name__ == "__main__":
    main()
