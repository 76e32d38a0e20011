"""Shared bits of the benchmarks: a scratch database and timing."""

from __future__ import annotations

import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from project import db, dbadmin
from project.urls import DatabaseURL


def refuse_production() -> None:
    """Stop unless this is a development or test setup: benchmarks drop databases."""
    from project.conf import get_settings

    if get_settings().is_production:
        raise SystemExit(
            "Error: benchmarks create and drop databases; not with ENVIRONMENT=production"
        )


@asynccontextmanager
async def bench_database(name: str) -> AsyncIterator[DatabaseURL]:
    """Create a fresh database ``bench_<name>`` on the configured server, point project.db
    at it, and drop it afterwards."""
    url = db.database_url().with_database(f"bench_{name}")
    await dbadmin.drop_database(url)
    await dbadmin.create_database(url)
    await db.use_database(url)
    try:
        yield url
    finally:
        await db.use_database(None)
        await dbadmin.drop_database(url)


async def best_of(repeats: int, run: Callable[[], Awaitable[float]]) -> float:
    """Return the median of ``repeats`` timings (each run returns its own seconds)."""
    return statistics.median([await run() for _ in range(repeats)])


def now() -> float:
    """Return a monotonic time in seconds."""
    return time.perf_counter()
