"""Read replicas: settings, read-only sessions, and routing against a real hot standby.

The standby tests start their own primary and streaming standby (``project.testing.
standby``) and make lag with ``pg_wal_replay_pause()``: no mock, no sleeps of chance.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from apps.tools.models import Tool
from project import db
from project.conf import BASE_DIR, get_settings, override_settings, settings_from
from project.db import replicas
from project.db.replicas import ReadOnlySessionError, ReadYourWritesMiddleware
from project.db.url import DatabaseURL
from project.enums import ToolType
from project.exceptions import ImproperlyConfigured
from project.testing.standby import Pair, running_pair
from tests.support import run_manage

T = TypeVar("T")
IN_RECOVERY = text("SELECT pg_is_in_recovery()")

# --- settings -------------------------------------------------------------------------


def test_replica_settings() -> None:
    settings = settings_from(
        {
            "DATABASE_REPLICA_URLS": "postgres://u:secret@r1:5432/app, postgresql://r2/app",
            "DB_REPLICA_MAX_LAG": "2.5",
        }
    )
    assert [url.host for url in settings.database_replica_urls] == ["r1", "r2"]
    assert settings.database_replica_urls[0].render().count("secret") == 0
    assert settings.replica_max_lag == 2.5
    assert settings_from({}).database_replica_urls == ()
    assert settings_from({}).replica_max_lag == 5.0


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"DATABASE_REPLICA_URLS": "mysql://u:secret@r/app"}, "DATABASE_REPLICA_URLS has"),
        (
            {"DATABASE_REPLICA_URLS": "postgres://r/app,http://u:secret@x/y"},
            "DATABASE_REPLICA_URLS entry 2 has",
        ),
        ({"DATABASE_REPLICA_URLS": "u:secret@host"}, "DATABASE_REPLICA_URLS is not a URL"),
        ({"DB_REPLICA_MAX_LAG": "soon"}, "DB_REPLICA_MAX_LAG must be"),
        ({"DB_REPLICA_MAX_LAG": "0"}, "DB_REPLICA_MAX_LAG must be"),
    ],
)
def test_bad_replica_settings(values: dict[str, str], message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as raised:
        settings_from(values)
    assert message in str(raised.value)
    assert "secret" not in str(raised.value)


def test_lsn_text_round_trips() -> None:
    assert replicas.parse_lsn("0/3000060") == 0x3000060
    assert replicas.format_lsn(replicas.parse_lsn("1A/FF")) == "1A/FF"
    for bad in ("", "12", "x/1", "1/", "123456789/0"):
        with pytest.raises(ValueError, match="not an LSN"):
            replicas.parse_lsn(bad)


def test_lag_from_samples() -> None:
    samples = [(10.0, 100), (11.0, 200), (12.0, 300)]
    assert replicas.lag_from(samples, 300, 12.5) == 0.0  # replayed the newest: no lag
    assert replicas.lag_from(samples, 250, 12.5) == 1.5  # has all the primary had at 11.0
    assert replicas.lag_from(samples, 50, 12.5) is None
    assert replicas.lag_from([], 50, 12.5) is None


# --- read-only sessions without replicas: the worker database ---------------------------


async def add_in_read_only() -> None:
    async with db.session_scope(read_only=True) as session:
        session.add(Tool(name="nope", tool_type=ToolType.NOTIFICATION))
        await session.flush()


async def core_delete_in_read_only() -> None:
    async with db.session_scope(read_only=True) as session:
        await session.execute(delete(Tool))


async def raw_delete_in_read_only() -> bool:
    """Send a DELETE past the ORM's guard; return whether the standby served it."""
    async with db.session_scope(read_only=True) as session:
        on_standby = bool(await session.scalar(IN_RECOVERY))
        connection = await session.connection()
        await connection.exec_driver_sql("DELETE FROM tools")
    return on_standby


async def test_read_only_session_on_the_primary_refuses_writes(transactional_db: Any) -> None:
    async with db.session_scope(read_only=True) as session:
        assert await session.scalar(text("SHOW transaction_read_only")) == "on"
        assert await session.scalar(IN_RECOVERY) is False
    with pytest.raises(ReadOnlySessionError, match="read-only"):
        await add_in_read_only()
    with pytest.raises(ReadOnlySessionError, match="DELETE"):
        await core_delete_in_read_only()
    with pytest.raises(DBAPIError, match="read-only transaction"):
        await raw_delete_in_read_only()
    async with db.session_scope() as session:  # plain sessions stay writable
        assert await session.scalar(text("SHOW transaction_read_only")) == "off"


async def test_no_replicas_no_commit_tracking(transactional_db: Any) -> None:
    async with db.session_scope() as session:
        session.add(Tool(name="tracked", tool_type=ToolType.NOTIFICATION))
    assert replicas.read_position() is None  # nothing asked the WAL position


async def test_read_only_session_sees_the_test_transaction(db_session: AsyncSession) -> None:
    db_session.add(Tool(name="uncommitted", tool_type=ToolType.NOTIFICATION))
    await db_session.flush()
    async with db.session_scope(read_only=True) as session:
        names = (await session.scalars(select(Tool.name))).all()
        assert "uncommitted" in names
        session.add(Tool(name="refused", tool_type=ToolType.NOTIFICATION))
        with pytest.raises(ReadOnlySessionError):
            await session.flush()
        await session.rollback()


async def test_read_session_dep_lazy_and_in_an_app(db_session: AsyncSession) -> None:
    await db_session.execute(select(1))
    app = FastAPI()

    @app.get("/ro")
    async def ro(session: db.ReadSessionDep) -> dict[str, Any]:
        return {"read_only": await session.scalar(text("SELECT 1")) == 1}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert (await client.get("/ro")).json() == {"read_only": True}


def test_importing_db_imports_no_fastapi() -> None:
    code = (
        "import sys; from project import db; assert 'fastapi' not in sys.modules; "
        "db.ReadSessionDep; assert 'fastapi' in sys.modules"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BASE_DIR, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


async def test_tests_mirror_the_worker_database(db_url: DatabaseURL) -> None:
    """With DATABASE_REPLICA_URLS set, a test still reads from its own database."""
    original = get_settings()
    elsewhere = DatabaseURL.parse("postgresql://u:pw@replica.invalid:5432/app")
    override_settings(dataclasses.replace(original, database_replica_urls=(elsewhere,)))
    try:
        assert db.replica_urls() == ()
        async with db.session_scope(read_only=True) as session:
            assert await session.scalar(text("SELECT current_database()")) == db_url.database
    finally:
        override_settings(original)


async def test_read_only_sessions_through_pgbouncer_are_read_only_transactions(
    transactional_db: Any,
) -> None:
    """DB_PGBOUNCER passes no server settings nor AUTOCOMMIT: BEGIN READ ONLY instead."""
    original = get_settings()
    override_settings(dataclasses.replace(original, pgbouncer=True))
    await db.dispose()
    try:
        async with db.session_scope(read_only=True) as session:
            assert await session.scalar(text("SHOW transaction_read_only")) == "on"
            assert await session.scalar(text("SHOW default_transaction_read_only")) == "off"
        with pytest.raises(DBAPIError, match="read-only transaction"):
            await raw_delete_in_read_only()
    finally:
        await db.dispose()
        override_settings(original)


# --- a real primary and hot standby ---------------------------------------------------


@pytest.fixture(scope="session")
def pair() -> Iterator[Pair]:
    """Start a primary and a streaming standby, with the project's migrations applied."""
    with running_pair() as started:
        result = run_manage(
            "migrate", env={"DATABASE_URL": started.primary.url().render(hide_password=False)}
        )
        assert result.returncode == 0, result.stderr
        started.wait_replayed()
        yield started


@pytest.fixture
async def replicated(pair: Pair, db_url: DatabaseURL) -> AsyncIterator[Pair]:
    """Point ``project.db`` at the pair's primary with its standby as the replica."""
    await db.use_database(pair.primary.url())
    await db.use_replicas([pair.standby.url()])
    try:
        yield pair
    finally:
        await db.use_replicas(None)
        await db.use_database(db_url)
        if not pair.standby.running:
            pair.standby.start()
        pair.standby.psql("SELECT pg_wal_replay_resume()")
        pair.wait_streaming()
        pair.primary.psql("TRUNCATE tools CASCADE", "app")
        pair.wait_replayed()  # the next test starts with the standby caught up


@pytest.fixture
def max_lag() -> Iterator[Callable[[float], None]]:
    """Let a test set DB_REPLICA_MAX_LAG; restore the settings afterwards."""
    original = get_settings()

    def set_lag(seconds: float) -> None:
        override_settings(dataclasses.replace(original, replica_max_lag=seconds))

    yield set_lag
    override_settings(original)


async def in_context(context: contextvars.Context, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` as a task in ``context``: one request or task of the application."""

    async def run() -> T:
        return await work()

    return await asyncio.create_task(run(), context=context)


async def where_and_sees(name: str) -> tuple[bool, bool]:
    """Return (served by the standby, sees the tool ``name``) for a read-only session."""
    async with db.session_scope(read_only=True) as session:
        on_standby = bool(await session.scalar(IN_RECOVERY))
        found = await session.scalar(select(Tool.id).where(Tool.name == name))
    return on_standby, found is not None


async def add_tool(name: str) -> None:
    async with db.session_scope() as session:
        session.add(Tool(name=name, tool_type=ToolType.NOTIFICATION))


async def test_routing(replicated: Pair) -> None:
    async with db.session_scope(read_only=True) as session:
        assert await session.scalar(IN_RECOVERY) is True
    async with db.session_scope() as session:
        assert await session.scalar(IN_RECOVERY) is False


async def test_writes_are_refused_on_the_replica(replicated: Pair) -> None:
    with pytest.raises(ReadOnlySessionError):
        await add_in_read_only()
    with pytest.raises(DBAPIError, match="read-only transaction"):
        await raw_delete_in_read_only()
    assert (await where_and_sees("-"))[0] is True  # the standby refused it


async def test_read_your_writes_with_replay_paused(replicated: Pair) -> None:
    writer = contextvars.Context()
    assert await in_context(writer, lambda: where_and_sees("ryw")) == (True, False)
    replicated.standby.psql("SELECT pg_wal_replay_pause()")
    await in_context(writer, lambda: add_tool("ryw"))
    # The writing context reads its own row, from the primary.
    assert await in_context(writer, lambda: where_and_sees("ryw")) == (False, True)
    # A fresh context still reads from the replica, which has not replayed the row.
    fresh = contextvars.Context()
    assert await in_context(fresh, lambda: where_and_sees("ryw")) == (True, False)
    # The writer's position, handed to another context, keeps that one on the primary.
    position = writer.run(replicas.read_position)
    assert position is not None
    handed = contextvars.Context()
    handed.run(replicas.read_after, position)  # as a later request or a job would
    assert await in_context(handed, lambda: where_and_sees("ryw")) == (False, True)
    replicated.standby.psql("SELECT pg_wal_replay_resume()")
    replicated.wait_replayed()
    # Replayed: the writing context is back on the replica, and sees its row there.
    assert await in_context(writer, lambda: where_and_sees("ryw")) == (True, True)


async def test_a_tasks_write_steers_only_its_own_reads(replicated: Pair) -> None:
    async def child() -> str | None:
        await add_tool(f"child-{uuid.uuid4()}")
        return replicas.read_position()

    assert replicas.read_position() is None
    assert await asyncio.create_task(child()) is not None
    assert replicas.read_position() is None  # the parent's reads are not sent to the primary
    with replicas.fresh_position() as request:  # a request's tasks report to the request
        await asyncio.create_task(child())
        assert request.wrote
        assert replicas.read_position() is not None


async def test_lag_guard(replicated: Pair, max_lag: Callable[[float], None]) -> None:
    max_lag(0.5)
    await db.use_replicas([replicated.standby.url()])  # a router with the new limit
    assert await in_context(contextvars.Context(), lambda: where_and_sees("-")) == (True, False)
    # Timed from before the pause: the lag is known to within one check interval (an upper
    # bound), counted from the last check whose primary position the standby replayed.
    paused = time.monotonic()
    replicated.standby.psql("SELECT pg_wal_replay_pause()")
    await add_tool("lagging")
    served: list[bool] = []
    deadline = paused + 15
    while time.monotonic() < deadline:
        on_standby, _ = await in_context(contextvars.Context(), lambda: where_and_sees("-"))
        served.append(on_standby)
        if not on_standby:
            break
        await asyncio.sleep(0.05)
    assert served[-1] is False, "fresh contexts never left the lagging replica"
    interval = db.get_router().interval
    assert time.monotonic() - paused >= 0.5 - interval  # not before the lag passed the limit
    replicated.standby.psql("SELECT pg_wal_replay_resume()")
    replicated.wait_replayed()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if (await in_context(contextvars.Context(), lambda: where_and_sees("-")))[0]:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the replica did not come back into rotation")


async def test_standby_down_no_failed_reads(replicated: Pair) -> None:
    """Readers keep reading while the standby stops under them: none fails, and once it
    is known to be down none waits for it."""
    assert (await where_and_sees("-"))[0] is True
    replica = db.get_router().replicas[0]
    stopped, busy = asyncio.Event(), asyncio.Event()
    failures: list[BaseException] = []
    on_standby_reads = 0
    after_down: list[float] = []

    async def reader() -> None:
        nonlocal on_standby_reads
        reads_after_stop = 0
        while reads_after_stop < 20:
            known_down = not replica.up
            started = time.monotonic()
            try:
                on_standby, _ = await where_and_sees("-")
            except Exception as error:
                failures.append(error)
            else:
                on_standby_reads += on_standby
                if on_standby_reads >= 40:
                    busy.set()
            if known_down:
                after_down.append(time.monotonic() - started)
            if stopped.is_set():
                reads_after_stop += 1
            await asyncio.sleep(0)

    readers = [asyncio.create_task(reader()) for _ in range(8)]
    await asyncio.wait_for(busy.wait(), 10)  # the readers are busy on the standby
    await asyncio.to_thread(replicated.standby.stop, "immediate")
    stopped.set()
    await asyncio.wait_for(asyncio.gather(*readers), 60)
    assert failures == []
    assert len(after_down) >= 8 * 10  # most reads after the stop knew it was down
    assert max(after_down) < 1.0
    assert [state.up for state in db.get_router().states()] == [False]
    assert (await where_and_sees("-"))[0] is False


async def test_a_statement_whose_replica_connection_breaks_runs_on_the_primary(
    replicated: Pair,
) -> None:
    async with db.session_scope(read_only=True) as session:
        assert await session.scalar(IN_RECOVERY) is True
        pid = await session.scalar(text("SELECT pg_backend_pid()"))
        replicated.standby.psql(f"SELECT pg_terminate_backend({pid}, 5000)")
        assert await session.scalar(IN_RECOVERY) is False  # again, on the primary
        assert await session.scalar(select(Tool.id).limit(1)) is None
    [state] = db.get_router().states()
    assert state.up is False
    assert state.error is not None
    await db.get_router().check()  # the next check puts it back into rotation
    assert (await where_and_sees("-"))[0] is True


async def test_get_read_db_in_an_app_with_read_after(replicated: Pair) -> None:
    app = FastAPI()
    app.add_middleware(ReadYourWritesMiddleware, enabled=lambda: bool(db.replica_urls()))

    @app.post("/tools/{name}")
    async def create(name: str, session: db.SessionDep) -> dict[str, str]:
        session.add(Tool(name=name, tool_type=ToolType.NOTIFICATION))
        return {"name": name}

    @app.get("/tools/{name}")
    async def read(name: str, session: db.ReadSessionDep) -> dict[str, bool]:
        found = await session.scalar(select(Tool.id).where(Tool.name == name))
        return {"standby": bool(await session.scalar(IN_RECOVERY)), "found": found is not None}

    async def get_read(client: httpx.AsyncClient, path: str, **kw: Any) -> dict[str, bool]:
        # A task per request, in a context of its own, as a server gives each request.
        task = asyncio.create_task(client.get(path, **kw), context=contextvars.Context())
        body: dict[str, bool] = (await task).json()
        return body

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        assert await get_read(client, "/tools/x") == {"standby": True, "found": False}
        replicated.standby.psql("SELECT pg_wal_replay_pause()")
        response = await asyncio.create_task(client.post("/tools/x"), context=contextvars.Context())
        assert response.status_code == 200
        position = response.headers["x-read-after"]
        assert replicas.parse_lsn(position) > 0
        assert "read_after=" in response.headers["set-cookie"]
        # Handed back, the position keeps the next request on the primary: it sees the row.
        headers = {"X-Read-After": position}
        assert await get_read(client, "/tools/x", headers=headers) == {
            "standby": False,
            "found": True,
        }
        client.cookies.clear()
        client.cookies.set("read_after", position)
        assert (await get_read(client, "/tools/x"))["found"] is True
        client.cookies.clear()
        assert await get_read(client, "/tools/x") == {"standby": True, "found": False}
        replicated.standby.psql("SELECT pg_wal_replay_resume()")
        replicated.wait_replayed()
        assert await get_read(client, "/tools/x", headers=headers) == {
            "standby": True,
            "found": True,
        }


async def test_migrate_with_the_standby_down(replicated: Pair) -> None:
    await asyncio.to_thread(replicated.standby.stop, "immediate")
    env = {
        "DATABASE_URL": replicated.primary.url().render(hide_password=False),
        "DATABASE_REPLICA_URLS": replicated.standby.url().render(hide_password=False),
    }
    result = await asyncio.to_thread(run_manage, "migrate", "base", "--yes", env=env)
    assert result.returncode == 0, result.stderr
    result = await asyncio.to_thread(run_manage, "migrate", env=env)
    assert result.returncode == 0, result.stderr
    result = await asyncio.to_thread(run_manage, "check", "--deploy", env=env)
    assert result.returncode == 1
    assert f"replica {replicated.standby.url()} is unreachable" in result.stderr


class Listener:
    """A TCP port that counts the connections made to it (a replica nobody should use)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_commands_never_touch_a_replica(pair: Pair, tmp_path: Path) -> None:
    listener = Listener()
    try:
        env = {
            "DATABASE_URL": pair.primary.url().render(hide_password=False),
            "DATABASE_REPLICA_URLS": f"postgresql://postgres@127.0.0.1:{listener.port}/app",
        }
        dump = str(tmp_path / "dump.json")
        for args in (
            ("migrate",),
            ("seed",),
            ("dumpdata", "-o", dump),
            ("flush", "--yes"),
            ("loaddata", dump),
            ("showmigrations",),
            ("migrate", "--check"),
        ):
            result = run_manage(*args, env=env)
            assert result.returncode == 0, (args, result.stderr)
        assert listener.connections == 0
    finally:
        listener.close()


async def test_showdb_and_check_report_the_replica(replicated: Pair) -> None:
    env = {
        "DATABASE_URL": replicated.primary.url().render(hide_password=False),
        "DATABASE_REPLICA_URLS": replicated.standby.url().render(hide_password=False),
    }
    result = await asyncio.to_thread(run_manage, "showdb", "--json", env=env)
    assert result.returncode == 0, result.stderr
    [state] = json.loads(result.stdout)["replicas"]
    assert state["url"] == str(replicated.standby.url())
    assert state["up"] is True
    assert state["lag"] == 0.0
    result = await asyncio.to_thread(run_manage, "showdb", env=env)
    assert f"Replica    {replicated.standby.url()}: lag 0.0 s" in result.stdout
    result = await asyncio.to_thread(run_manage, "check", env=env)
    assert f"replica: {replicated.standby.url()}: lag 0.0 s" in result.stdout, result.stderr
    assert result.returncode == 0, result.stderr


async def test_dispose_stops_the_checks(replicated: Pair) -> None:
    assert (await where_and_sees("-"))[0] is True
    router = db.get_router()
    checker = router._checker
    assert checker is not None
    assert not checker.done()
    await db.dispose()
    assert checker.done()
