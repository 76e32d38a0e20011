"""Benchmark read replicas on a real primary and hot standby, started for the run.

    uv run python -m bench.replicas

1. A read-only request cycle on the replica (``get_read_db``: open, one SELECT by key,
   close) against a ``get_db`` cycle on the primary (open, the same SELECT, commit,
   close), in the same run, alternating rounds (target: at most 1.3x).
2. With replay paused on the standby and writes flowing, for ``2 x DB_REPLICA_MAX_LAG``:
   the share of read-only sessions the primary served in the writing context (target
   100%: each read follows that context's own write) and in other contexts, before and
   after the replica's lag passed the limit (targets 0% and 100%).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import os
import statistics
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from sqlalchemy import select, text

from bench.common import now, refuse_production
from project import db
from project.conf import BASE_DIR, VARIABLES, get_settings, override_settings
from project.testing.standby import Pair, start_pair

CYCLES = 2_000
ROUNDS = 5
MAX_LAG = 1.0
IN_RECOVERY = text("SELECT pg_is_in_recovery()")


async def _migrate(pair: Pair) -> None:
    env = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    env["DATABASE_URL"] = pair.primary.url().render(hide_password=False)
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "manage.py", "migrate"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"Error: migrate failed: {result.stderr.strip()}")


async def _tool() -> uuid.UUID:
    from apps.tools.models import Tool
    from project.enums import ToolType

    async with db.session_scope() as session:
        tool = Tool(name="rsi", tool_type=ToolType.TECHNICAL_INDICATOR)
        session.add(tool)
    return tool.id


async def _cycles(dependency: Callable[[], AsyncIterator[Any]], tool_id: uuid.UUID) -> float:
    """Return the seconds per cycle of ``dependency`` as FastAPI drives it."""
    from apps.tools.models import Tool

    statement = select(Tool).where(Tool.id == tool_id)
    started = now()
    for _ in range(CYCLES):
        generator = dependency()
        session = await anext(generator)
        (await session.execute(statement)).scalar_one()
        with contextlib.suppress(StopAsyncIteration):
            await anext(generator)
    return (now() - started) / CYCLES


async def _served_by_standby() -> bool:
    async with db.session_scope(read_only=True) as session:
        return bool(await session.scalar(IN_RECOVERY))


async def _in(context: contextvars.Context, work: Callable[[], Any]) -> Any:
    async def run() -> Any:
        return await work()

    return await asyncio.create_task(run(), context=context)


async def _paused(pair: Pair) -> tuple[float, float, float, float]:
    """Return (writer's primary share, others' before the limit, others' after, when the
    others moved, in seconds after the pause)."""
    from apps.tools.models import Tool
    from project.enums import ToolType

    writer = contextvars.Context()
    paused = now()  # from before the pause is asked for: it takes effect during the call
    await asyncio.to_thread(pair.standby.psql, "SELECT pg_wal_replay_pause()")
    writer_reads: list[bool] = []
    others: list[tuple[float, bool]] = []
    count = 0

    async def write_then_read() -> bool:
        nonlocal count
        count += 1
        async with db.session_scope() as session:
            session.add(Tool(name=f"w{count}", tool_type=ToolType.NOTIFICATION))
        return await _served_by_standby()

    try:
        while now() - paused < 2 * MAX_LAG:
            writer_reads.append(await _in(writer, write_then_read))
            for _ in range(5):
                on_standby = await _in(contextvars.Context(), _served_by_standby)
                others.append((now() - paused, on_standby))
    finally:
        await asyncio.to_thread(pair.standby.psql, "SELECT pg_wal_replay_resume()")
    writer_share = writer_reads.count(False) / len(writer_reads)
    moved = next((t for t, on_standby in others if not on_standby), float("inf"))
    before = [on_standby for t, on_standby in others if t < MAX_LAG]
    after = [on_standby for t, on_standby in others if t >= moved]
    before_share = before.count(False) / len(before) if before else 0.0
    after_share = after.count(False) / len(after) if after else 0.0
    return writer_share, before_share, after_share, moved


async def main() -> None:
    refuse_production()
    pair = await asyncio.to_thread(start_pair)
    original = get_settings()
    try:
        await _migrate(pair)
        override_settings(dataclasses.replace(original, replica_max_lag=MAX_LAG))
        await db.use_database(pair.primary.url())
        await db.use_replicas([pair.standby.url()])
        tool_id = await _tool()
        await asyncio.to_thread(pair.wait_replayed)
        print(f"primary {pair.primary.url()}, standby {pair.standby.url()}")
        if not await _served_by_standby():
            raise SystemExit("Error: the read-only session did not reach the standby")
        await _cycles(db.get_read_db, tool_id)  # warm both pools and caches
        await _cycles(db.get_db, tool_id)
        replica, primary = [], []
        for _ in range(ROUNDS):
            replica.append(await _cycles(db.get_read_db, tool_id))
            primary.append(await _cycles(db.get_db, tool_id))
        ratio = statistics.median(replica) / statistics.median(primary)
        print(
            f"request cycle, {CYCLES} x {ROUNDS}: read-only on the replica "
            f"{statistics.median(replica) * 1e6:.0f} us, get_db on the primary "
            f"{statistics.median(primary) * 1e6:.0f} us; ratio {ratio:.2f} (target <= 1.3)"
        )
        writer, before, after, moved = await _paused(pair)
        print(
            f"replay paused, writes flowing, DB_REPLICA_MAX_LAG={MAX_LAG:g} s: primary served "
            f"{writer:.0%} of the writing context's reads (target 100%), {before:.0%} of "
            f"other contexts' before the lag reached the limit (target 0%) and {after:.0%} "
            f"after they moved, {moved:.2f} s after the pause (target 100%, >= {MAX_LAG:g} s "
            f"less one check interval, {db.get_router().interval:g} s)"
        )
    finally:
        await db.use_replicas(None)
        await db.use_database(None)
        override_settings(original)
        await asyncio.to_thread(pair.stop)


if __name__ == "__main__":
    asyncio.run(main())
