"""The checkout's liveness check on real asyncpg connections, and its one adapter."""

from __future__ import annotations

import asyncio
import threading

import asyncpg

from project.db import admin as dbadmin
from project.db import liveness
from project.db.url import DatabaseURL


def test_asyncpg_still_keeps_its_transport_where_the_adapter_looks() -> None:
    """If this fails, asyncpg moved its transport: fix ``liveness.transport_of``."""
    assert "_transport" in asyncpg.connection.Connection.__slots__


async def test_a_live_idle_connection_is_not_dead(db_url: DatabaseURL) -> None:
    conn = await dbadmin.connect(db_url)
    try:
        assert isinstance(liveness.transport_of(conn), asyncio.Transport)
        assert liveness.socket_fd(conn) is not None
        assert await conn.fetchval("SELECT 1") == 1
        assert not liveness.is_dead(conn)
    finally:
        await conn.close()


async def test_a_connection_the_server_ended_is_dead_before_asyncpg_notices(
    db_url: DatabaseURL,
) -> None:
    conn = await dbadmin.connect(db_url)
    pid = conn.get_server_pid()

    async def terminate() -> None:
        admin = await dbadmin.connect(db_url)
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1, 5000)", pid)
        finally:
            await admin.close()

    # Terminated from another thread while this loop is blocked: asyncpg reads nothing.
    worker = threading.Thread(target=lambda: asyncio.run(terminate()))
    worker.start()
    worker.join()
    assert not conn.is_closed()  # asyncpg cannot know yet
    assert liveness.is_dead(conn)
    conn.terminate()


async def test_a_closed_connection_is_dead(db_url: DatabaseURL) -> None:
    conn = await dbadmin.connect(db_url)
    await conn.close()
    assert liveness.is_dead(conn)
    assert liveness.socket_fd(conn) is None
