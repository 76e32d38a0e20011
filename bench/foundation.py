"""Benchmark the foundation against raw asyncpg, side by side in one run.

    uv run python -m bench.foundation

1. ORM ``add_all`` of 10,000 new objects + commit: INSERT statements (target: at most one
   per 500 rows) and rows/s as a ratio to asyncpg ``executemany`` into the same table.
2. One request cycle through ``get_db`` with pre-ping on (open, one SELECT, commit,
   close) against a raw asyncpg pool acquire + fetch + release (target: at most 2.5x).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import asyncpg
from sqlalchemy import MetaData, event, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from bench.common import bench_database, best_of, now, refuse_production
from project import db
from project.db import admin as dbadmin
from project.models import NAMING_CONVENTION, SoftDeleteMixin, TimestampMixin, UUIDPrimaryKeyMixin

ROWS = 10_000
CYCLES = 3_000


class BenchBase(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Quote(BenchBase):
    __tablename__ = "bench_quote"

    symbol: Mapped[str]
    price: Mapped[float]
    note: Mapped[str | None] = mapped_column(default=None)


async def bulk_insert() -> dict[str, Any]:
    engine = db.get_engine()
    async with engine.begin() as conn:
        await conn.run_sync(BenchBase.metadata.create_all)
    inserts = 0

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        nonlocal inserts
        if statement.lstrip().upper().startswith("INSERT"):
            inserts += 1

    event.listen(engine.sync_engine, "before_cursor_execute", count)

    async def orm() -> float:
        nonlocal inserts
        inserts = 0
        started = now()
        async with db.session_scope() as session:
            session.add_all(Quote(symbol=f"S{i}", price=float(i)) for i in range(ROWS))
        return now() - started

    orm_seconds = await best_of(3, orm)
    orm_inserts = inserts
    event.remove(engine.sync_engine, "before_cursor_execute", count)

    raw = await dbadmin.connect(db.database_url())
    try:

        async def executemany() -> float:
            rows = [(uuid.uuid4(), f"S{i}", float(i)) for i in range(ROWS)]
            started = now()
            async with raw.transaction():
                await raw.executemany(
                    "INSERT INTO bench_quote (id, symbol, price) VALUES ($1, $2, $3)", rows
                )
            return now() - started

        raw_seconds = await best_of(3, executemany)
    finally:
        await raw.close()
    return {
        "orm_rows_per_s": ROWS / orm_seconds,
        "asyncpg_rows_per_s": ROWS / raw_seconds,
        "ratio": raw_seconds / orm_seconds,
        "insert_statements": orm_inserts,
        "rows_per_insert": ROWS / max(orm_inserts, 1),
    }


async def request_cycle() -> dict[str, Any]:
    await db.use_database(db.database_url())  # a fresh pooled engine with pre-ping on
    pool = await asyncpg.create_pool(**db.database_url().connect_kwargs(), min_size=5)
    assert pool is not None
    try:

        async def raw() -> float:
            started = now()
            for _ in range(CYCLES):
                async with pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
            return (now() - started) / CYCLES

        async def through_get_db() -> float:
            started = now()
            for _ in range(CYCLES):
                requests = db.get_db()
                session = await anext(requests)
                await session.execute(text("SELECT 1"))
                with contextlib.suppress(StopAsyncIteration):
                    await anext(requests)
            return (now() - started) / CYCLES

        await raw()
        await through_get_db()  # warm both pools and caches
        raw_s = await best_of(5, raw)
        ours = await best_of(5, through_get_db)
    finally:
        await pool.close()
    return {"asyncpg_us": raw_s * 1e6, "get_db_us": ours * 1e6, "ratio": ours / raw_s}


async def main() -> None:
    refuse_production()
    async with bench_database("foundation") as url:
        print(f"database: {url}")
        bulk = await bulk_insert()
        print(
            f"add_all {ROWS} + commit: {bulk['orm_rows_per_s']:,.0f} rows/s, "
            f"{bulk['insert_statements']} INSERT statements "
            f"({bulk['rows_per_insert']:,.0f} rows each; target >= 500)"
        )
        print(
            f"asyncpg executemany:     {bulk['asyncpg_rows_per_s']:,.0f} rows/s; "
            f"ORM/asyncpg = {bulk['ratio']:.2f}"
        )
        cycle = await request_cycle()
        print(
            f"request cycle: get_db {cycle['get_db_us']:.0f} us, asyncpg pool "
            f"{cycle['asyncpg_us']:.0f} us; ratio {cycle['ratio']:.2f} (target <= 2.5)"
        )
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(main())
