"""Benchmark ``manage.py seed`` against raw asyncpg ``executemany`` into the same table.

    uv run python -m bench.seed

- rows/s of node_executions written by ``seed --count 100000`` (the time of the
  executions seeder, which also writes its 10,000 workflow runs), against asyncpg
  ``executemany`` of 100,000 equivalent rows in the same run (target: at least 40%);
- peak memory (max RSS) of ``manage.py seed --count 1000000`` against ``--count 100000``
  (target: at most 2x).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from bench.common import peak_rss_mib, refuse_production
from project import db, seeding
from project.db import admin as dbadmin
from project.migrate import commands as migrations

ROOT = Path(__file__).resolve().parent.parent
COUNT = 100_000


def peak_rss_mb(count: int, env: dict[str, str]) -> float:
    """Run ``manage.py seed --count`` in a child and return its peak RSS in MiB."""
    return peak_rss_mib(str(ROOT / "manage.py"), ["seed", "--count", str(count)], env, str(ROOT))


async def executemany_rows_per_s(url: object) -> float:
    """Insert COUNT node runs with asyncpg executemany, in a rolled-back transaction."""
    conn = await dbadmin.connect(db.database_url())
    try:
        run_id, node_id = await conn.fetchrow(
            "SELECT id, (SELECT id FROM nodes LIMIT 1) FROM workflow_executions LIMIT 1"
        )
        now = datetime.now(UTC)
        payload_in, payload_out = json.dumps({"price": 64250.5}), json.dumps({"ok": True})
        records = [
            (uuid.uuid4(), run_id, node_id, "completed", now, now, payload_in, payload_out, 0)
            for _ in range(COUNT)
        ]
        transaction = conn.transaction()
        await transaction.start()
        started = time.perf_counter()
        await conn.executemany(
            "INSERT INTO node_executions (id, workflow_execution_id, node_id, status, "
            "started_at, finished_at, input, output, retry_count) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb, $9)",
            records,
        )
        seconds = time.perf_counter() - started
        await transaction.rollback()
        return COUNT / seconds
    finally:
        await conn.close()


def main() -> None:
    refuse_production()
    url = db.database_url().with_database("bench_seed")
    asyncio.run(dbadmin.drop_database(url))
    asyncio.run(dbadmin.create_database(url))
    db.set_database_url(url)
    env = dict(os.environ, DATABASE_URL=url.render(hide_password=False))
    try:
        migrations.upgrade("head", echo=lambda _: None)

        async def seed_and_compare() -> tuple[seeding.SeedReport, float]:
            report = await seeding.run(count=COUNT, random_seed=1)
            baseline = await executemany_rows_per_s(url)
            await db.dispose()
            return report, baseline

        report, baseline = asyncio.run(seed_and_compare())
        ours = report.rows["node_executions"] / report.seeders["executions.history"]
        print(f"seed --count {COUNT}: {report.seconds:.2f} s in all")
        print(
            f"node_executions: seed {ours:,.0f} rows/s, asyncpg executemany {baseline:,.0f} "
            f"rows/s: {ours / baseline:.0%} (target >= 40%)"
        )
        small = peak_rss_mb(COUNT, env)
        large = peak_rss_mb(10 * COUNT, env)
        print(
            f"peak RSS: --count {COUNT}: {small:.0f} MiB, --count {10 * COUNT}: {large:.0f} MiB; "
            f"ratio {large / small:.2f} (target <= 2)"
        )
    finally:
        db.set_database_url(None)
        asyncio.run(dbadmin.drop_database(url))


if __name__ == "__main__":
    main()
