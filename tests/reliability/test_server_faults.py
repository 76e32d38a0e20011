"""Faults injected for real: backends killed under a live engine, a full pool."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest
from sqlalchemy import exc, text
from sqlalchemy.ext.asyncio import AsyncEngine

from apps.tools.models import Tool
from project import db
from project.conf import get_settings, override_settings
from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.enums import ToolType


async def terminate_backends(url: DatabaseURL) -> int:
    """Kill every server process connected to ``url``'s database but this one, and wait
    until they are gone: then the server is "back"."""
    others = "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
    conn = await dbadmin.connect(url)
    try:
        killed = int(await conn.fetchval(f"SELECT count(pg_terminate_backend(pid)) {others}"))
        deadline = time.monotonic() + 10
        # Polling the server: there is no event to wait on.
        while await conn.fetchval(f"SELECT count(*) {others}") and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        return killed
    finally:
        await conn.close()


async def request() -> int:
    """One request-style unit of work through get_db."""
    sessions = db.get_db()
    session = await anext(sessions)
    value = await session.scalar(text("SELECT 1"))
    with contextlib.suppress(StopAsyncIteration):  # the dependency's commit and close
        await anext(sessions)
    return int(value or 0)


async def test_requests_after_backends_are_killed_all_succeed(
    transactional_db: AsyncEngine, db_url: DatabaseURL
) -> None:
    # Fill the pool with several live connections, some recently used, some idle.
    assert await asyncio.gather(*(request() for _ in range(5))) == [1] * 5
    for round_ in range(3):
        killed = await terminate_backends(db_url)
        assert killed >= 1
        if round_ == 1:
            await asyncio.sleep(0.6)  # now idle past the ping threshold: the ping path
        results = await asyncio.gather(*(request() for _ in range(10)))
        assert results == [1] * 10
        assert [await request() for _ in range(5)] == [1] * 5


async def test_transaction_cut_midway_fails_cleanly_and_writes_nothing(
    transactional_db: AsyncEngine, db_url: DatabaseURL
) -> None:
    async def cut_midway() -> None:
        async with db.session_scope() as session:
            session.add(Tool(name="half-written", tool_type=ToolType.NOTIFICATION))
            await session.flush()
            await terminate_backends(db_url)
            await asyncio.sleep(0.05)
            session.add(Tool(name="second", tool_type=ToolType.NOTIFICATION))
            await session.flush()

    with pytest.raises(exc.DBAPIError) as cut:
        await cut_midway()
    assert cut.value.connection_invalidated
    async with db.session_scope() as session:
        assert await session.scalar(text("SELECT count(*) FROM tools")) == 0
    assert await request() == 1


async def test_pool_exhaustion_waits_then_fails_clearly_then_recovers(db_url: DatabaseURL) -> None:
    settings = get_settings()
    small = type(settings)(
        **{**settings.__dict__, "pool_size": 2, "max_overflow": 1, "pool_timeout": 0.5}
    )
    override_settings(small)
    await db.use_database(db_url)
    try:
        held = [db.async_session() for _ in range(3)]
        for session in held:
            await session.execute(text("SELECT 1"))  # each now holds a connection
        started = time.perf_counter()
        with pytest.raises(exc.TimeoutError, match=r"QueuePool limit of size 2 overflow 1"):
            await request()
        waited = time.perf_counter() - started
        assert 0.45 <= waited < 3
        for session in held:
            await session.close()
        assert await asyncio.gather(*(request() for _ in range(6))) == [1] * 6
    finally:
        override_settings(None)
        await db.use_database(db_url)


async def terminate_and_wait(url: DatabaseURL) -> int:
    """Kill every other backend of ``url``'s database; return once each one has exited
    (``pg_terminate_backend(pid, timeout)``), without giving the client's event loop a
    turn to read the servers' goodbyes."""
    conn = await dbadmin.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
    finally:
        await conn.close()


def kill_while_the_loop_is_busy(url: DatabaseURL) -> int:
    """Kill the backends from another thread while this event loop is blocked, as if
    another process did it while the application was busy: the pooled sockets' goodbyes
    stay unread until the next request runs."""
    killed: list[int] = []
    worker = threading.Thread(target=lambda: killed.append(asyncio.run(terminate_and_wait(url))))
    worker.start()
    worker.join()
    return killed[0]


async def test_burst_right_after_the_pool_is_killed_never_gets_a_dead_connection(
    transactional_db: AsyncEngine, db_url: DatabaseURL
) -> None:
    # Every pooled connection was checked in just now: no ping would run for any of them.
    for _round in range(10):
        assert await asyncio.gather(*(request() for _ in range(5))) == [1] * 5
        assert kill_while_the_loop_is_busy(db_url) >= 1
        results = await asyncio.gather(*(request() for _ in range(20)), return_exceptions=True)
        failures = [repr(r) for r in results if r != 1]
        assert failures == []
