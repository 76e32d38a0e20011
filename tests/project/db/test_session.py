"""The engine, sessions, the FastAPI dependency and the pool's pre-ping."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

import asyncpg
import httpx
import pytest
from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy import MetaData, String, event, func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import QueuePool

from project.conf import get_settings
from project.db import admin as dbadmin
from project.db import liveness, target
from project.db import session as db
from project.db.url import DatabaseURL
from project.models import (
    NAMING_CONVENTION,
    SoftDeleteMixin,
    TimestampMixin,
    UUIDPrimaryKeyMixin,
)
from tests.support import run_python


class DbSampleBase(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, DeclarativeBase):
    """A base of its own, so the sample table never reaches the migration metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Note(DbSampleBase):
    __tablename__ = "test_db_note"

    body: Mapped[str] = mapped_column(String(200))


class Boom(Exception):
    """Raised by the code under test after it wrote something."""


SessionDep = db.SessionDep
# The trap SessionDep avoids: FastAPI ends a plain Depends dependency after the response.
LateCommitDep = Annotated[AsyncSession, Depends(db.get_db)]


# --- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
async def db_state() -> AsyncIterator[None]:
    """Put back the process's database URL and engine after a test that changes them."""
    url, engine = target.chosen(), db._state.engine
    try:
        yield
    finally:
        current = db._state.engine
        if current is not None and current is not engine:
            await current.dispose()
        target.choose(url)
        db._state.engine = engine


@pytest.fixture
async def note_table(transactional_db: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """Create the sample table for real (for tests that commit); drop it afterwards."""
    async with transactional_db.begin() as connection:
        await connection.run_sync(DbSampleBase.metadata.create_all)
    try:
        yield transactional_db
    finally:
        async with transactional_db.begin() as connection:
            await connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            await connection.run_sync(DbSampleBase.metadata.drop_all)


def _create_tables(session: Session) -> None:
    DbSampleBase.metadata.create_all(session.connection())


async def _committed_bodies(url: DatabaseURL) -> list[str]:
    """Return the notes' bodies as a brand-new connection sees them."""
    connection = await dbadmin.connect(url)
    try:
        rows = await connection.fetch("SELECT body FROM test_db_note ORDER BY body")
        return [row["body"] for row in rows]
    finally:
        await connection.close()


async def _backend_gone(url: DatabaseURL, pid: int, timeout: float = 5.0) -> bool:
    """Return whether server process ``pid`` is gone (waiting up to ``timeout``)."""
    connection = await dbadmin.connect(url)
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while await connection.fetchval("SELECT 1 FROM pg_stat_activity WHERE pid = $1", pid):
            if asyncio.get_running_loop().time() > deadline:
                return False
            await asyncio.sleep(0.01)
        return True
    finally:
        await connection.close()


async def _terminate_other_backends(url: DatabaseURL) -> list[int]:
    """Kill every other connection to the test database, as a server restart would."""
    connection = await dbadmin.connect(url)
    try:
        pids: list[int] = [
            row["pid"]
            for row in await connection.fetch(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ]
    finally:
        await connection.close()
    for pid in pids:
        assert await _backend_gone(url, pid), f"backend {pid} survived pg_terminate_backend"
    # Let the event loop read the server's goodbye on the pooled sockets.
    await asyncio.sleep(0.1)
    return pids


async def _backend_pid() -> int:
    async with db.session_scope() as session:
        pid = await session.scalar(select(func.pg_backend_pid()))
    assert isinstance(pid, int)
    return pid


async def _two_backend_pids() -> set[int]:
    """Return the server pids behind two sessions open at once (two pooled connections)."""
    async with db.session_scope() as first, db.session_scope() as second:
        pids = [await s.scalar(select(func.pg_backend_pid())) for s in (first, second)]
    return {pid for pid in pids if isinstance(pid, int)}


def _pool(engine: AsyncEngine) -> QueuePool:
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    return pool


# --- engine --------------------------------------------------------------------------------


async def test_engine_connects(db_engine: AsyncEngine, db_url: DatabaseURL) -> None:
    async with db_engine.connect() as connection:
        assert await connection.scalar(text("SELECT current_database()")) == db_url.database
        assert await connection.scalar(text("SELECT 1")) == 1


def test_importing_opens_no_connection() -> None:
    code = (
        "import project.db.session, project.models, project.enums\n"
        "assert project.db.session._state.engine is None\n"
        "from project.db import engine\n"
        "assert engine is project.db.get_engine()\n"
        "print(engine.url.database, engine.sync_engine.pool.checkedout())\n"
    )
    # Nothing listens on port 9: any connection attempt would fail.
    env = {**os.environ, "DATABASE_URL": "postgresql://nobody:secret@127.0.0.1:9/nowhere"}
    result = run_python("-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["nowhere", "0"]


async def test_engine_attribute_is_created_on_first_use(
    db_url: DatabaseURL, db_state: None
) -> None:
    await db.dispose()
    assert db._state.engine is None

    from project.db import engine

    assert isinstance(engine, AsyncEngine)
    assert db._state.engine is engine
    assert db.get_engine() is engine
    assert engine.url.database == db_url.database
    with pytest.raises(AttributeError, match="no_such_thing"):
        _ = db.no_such_thing


def test_async_session_keeps_objects_loaded_after_commit() -> None:
    assert db.async_session.kw["expire_on_commit"] is False


async def test_dispose_closes_connections_and_forgets_the_engine(
    db_url: DatabaseURL, db_state: None
) -> None:
    engine = db.get_engine()
    pid = await _backend_pid()
    assert _pool(engine).checkedin() == 1

    await db.dispose()

    assert await _backend_gone(db_url, pid)
    assert db.get_engine() is not engine
    await db.dispose()
    await db.dispose()  # nothing to dispose: no error


async def test_use_database_points_sessions_elsewhere(db_url: DatabaseURL, db_state: None) -> None:
    old_engine = db.get_engine()
    old_pid = await _backend_pid()
    other = db_url.with_database(dbadmin.MAINTENANCE_DATABASE)

    await db.use_database(other)

    assert await _backend_gone(db_url, old_pid)  # the old engine was disposed
    assert target.database_url() == other
    assert target.direct_database_url() == other
    assert db.get_engine() is not old_engine
    async with db.session_scope() as session:
        current = await session.scalar(text("SELECT current_database()"))
    assert current == dbadmin.MAINTENANCE_DATABASE

    await db.use_database(db_url)
    async with db.session_scope() as session:
        current = await session.scalar(text("SELECT current_database()"))
    assert current == db_url.database


async def test_set_database_url_forgets_the_engine_without_io(
    db_url: DatabaseURL, db_state: None
) -> None:
    old_engine = db.get_engine()
    other = db_url.with_database("test_somewhere_else")

    db.set_database_url(other)

    engine = db.get_engine()
    assert engine is not old_engine
    assert engine.url.database == "test_somewhere_else"
    assert target.database_url() == other
    assert _pool(engine).checkedout() == 0


async def test_lifespan_disposes_the_engine(db_url: DatabaseURL, db_state: None) -> None:
    app = FastAPI(lifespan=db.lifespan)
    async with app.router.lifespan_context(app):
        engine = db.get_engine()
        pid = await _backend_pid()
        assert _pool(engine).checkedin() == 1

    assert await _backend_gone(db_url, pid)
    assert db._state.engine is None


async def test_lifespan_disposes_on_error(db_url: DatabaseURL, db_state: None) -> None:
    pids: list[int] = []

    async def serve() -> None:
        async with db.lifespan(object()):
            pids.append(await _backend_pid())
            raise Boom

    with pytest.raises(Boom):
        await serve()

    assert await _backend_gone(db_url, pids[0])
    assert db._state.engine is None


# --- session_scope -------------------------------------------------------------------------


async def test_session_scope_commits_on_success(
    note_table: AsyncEngine, db_url: DatabaseURL
) -> None:
    async with db.session_scope() as session:
        note = Note(body="kept")
        session.add(note)
        await session.flush()
        assert await _committed_bodies(db_url) == []  # not before the block ends

    assert await _committed_bodies(db_url) == ["kept"]
    # Closed: the object is detached but still readable (expire_on_commit=False).
    assert inspect(note).detached
    assert note not in session
    assert note.body == "kept"
    assert note.created_at is not None
    assert _pool(db.get_engine()).checkedout() == 0


@pytest.mark.parametrize("error", [Boom, asyncio.CancelledError])
async def test_session_scope_rolls_back_and_reraises(
    note_table: AsyncEngine, db_url: DatabaseURL, error: type[BaseException]
) -> None:
    async with db.session_scope() as session:
        session.add(Note(body="existing"))

    rolled_back: list[Session] = []

    def record(rolled: Session) -> None:
        rolled_back.append(rolled)

    used: list[AsyncSession] = []
    loaded: list[Note] = []

    async def write_then_fail() -> None:
        async with db.session_scope() as session:
            used.append(session)
            existing = await session.scalar(select(Note))
            assert existing is not None
            loaded.append(existing)
            existing.body = "changed"
            session.add(Note(body="lost"))
            await session.flush()
            raise error

    event.listen(Session, "after_rollback", record)
    try:
        with pytest.raises(error):
            await write_then_fail()
    finally:
        event.remove(Session, "after_rollback", record)

    (session,) = used
    assert session.sync_session in rolled_back  # an explicit rollback, not just the close
    assert await _committed_bodies(db_url) == ["existing"]
    assert inspect(loaded[0]).detached  # closed, not just rolled back
    assert not session.in_transaction()
    assert _pool(db.get_engine()).checkedout() == 0


async def test_session_scope_joins_the_test_transaction(
    db_session: AsyncSession, db_url: DatabaseURL
) -> None:
    await db_session.run_sync(_create_tables)
    async with db.session_scope() as session:
        session.add(Note(body="inside"))

    count = select(func.count()).select_from(Note)
    assert await db_session.scalar(count) == 1

    async def write_then_fail() -> None:
        async with db.session_scope() as session:
            session.add(Note(body="rolled back"))
            await session.flush()
            raise Boom

    with pytest.raises(Boom):
        await write_then_fail()

    assert list(await db_session.scalars(select(Note.body))) == ["inside"]


# --- get_db --------------------------------------------------------------------------------


def _app(sessions: list[AsyncSession]) -> FastAPI:
    app = FastAPI()

    @app.post("/notes")
    async def create_note(body: str, session: SessionDep) -> dict[str, str]:
        sessions.append(session)
        note = Note(body=body)
        session.add(note)
        await session.flush()
        return {"id": str(note.id)}

    @app.post("/notes/crash")
    async def crash(body: str, session: SessionDep) -> None:
        sessions.append(session)
        session.add(Note(body=body))
        await session.flush()
        raise Boom("after writing")

    @app.post("/notes/conflict")
    async def conflict(body: str, session: SessionDep) -> None:
        sessions.append(session)
        session.add(Note(body=body))
        await session.flush()
        raise HTTPException(status_code=409, detail="conflict")

    return app


def _client(app: FastAPI) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


async def test_get_db_commits_a_successful_request(
    note_table: AsyncEngine, db_url: DatabaseURL
) -> None:
    sessions: list[AsyncSession] = []
    async with _client(_app(sessions)) as client:
        response = await client.post("/notes", params={"body": "from the api"})

    assert response.status_code == 200
    assert await _committed_bodies(db_url) == ["from the api"]
    (session,) = sessions
    assert len(session.identity_map) == 0  # closed
    assert _pool(db.get_engine()).checkedout() == 0


@pytest.mark.parametrize(("path", "status"), [("/notes/crash", 500), ("/notes/conflict", 409)])
async def test_get_db_rolls_back_a_failing_request(
    note_table: AsyncEngine, db_url: DatabaseURL, path: str, status: int
) -> None:
    sessions: list[AsyncSession] = []
    async with _client(_app(sessions)) as client:
        response = await client.post(path, params={"body": "lost"})
        assert response.status_code == status
        ok = await client.post("/notes", params={"body": "kept"})
        assert ok.status_code == 200

    assert await _committed_bodies(db_url) == ["kept"]
    assert len(sessions) == 2
    assert all(not session.in_transaction() for session in sessions)
    assert _pool(db.get_engine()).checkedout() == 0


async def test_get_db_reraises_the_error(note_table: AsyncEngine, db_url: DatabaseURL) -> None:
    transport = httpx.ASGITransport(app=_app([]))  # app errors reach the client
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        with pytest.raises(Boom):
            await client.post("/notes/crash", params={"body": "lost"})
    assert await _committed_bodies(db_url) == []


@pytest.fixture
async def doomed_on_commit(note_table: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """Make COMMIT fail for a transaction that wrote a note with the body 'doomed': a
    deferred constraint trigger, checked only at COMMIT, as a deferred foreign key is."""
    async with note_table.begin() as connection:
        await connection.execute(
            text(
                "CREATE FUNCTION test_db_refuse_doomed() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN IF NEW.body = 'doomed' THEN "
                "RAISE EXCEPTION 'doomed at commit' USING ERRCODE = '23514'; END IF; "
                "RETURN NEW; END $$"
            )
        )
        await connection.execute(
            text(
                "CREATE CONSTRAINT TRIGGER test_db_doomed AFTER INSERT ON test_db_note "
                "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW "
                "EXECUTE FUNCTION test_db_refuse_doomed()"
            )
        )
    try:
        yield note_table
    finally:
        async with note_table.begin() as connection:
            await connection.execute(text("DROP TABLE IF EXISTS test_db_note"))
            await connection.execute(text("DROP FUNCTION test_db_refuse_doomed()"))


async def test_session_dep_answers_5xx_when_the_commit_fails(
    doomed_on_commit: AsyncEngine, db_url: DatabaseURL
) -> None:
    async with _client(_app([])) as client:
        response = await client.post("/notes", params={"body": "doomed"})
        assert response.status_code == 500
        assert (await client.post("/notes", params={"body": "kept"})).status_code == 200
    assert await _committed_bodies(db_url) == ["kept"]
    assert _pool(db.get_engine()).checkedout() == 0


async def test_plain_depends_on_get_db_answers_success_for_a_lost_commit(
    doomed_on_commit: AsyncEngine, db_url: DatabaseURL
) -> None:
    """Why SessionDep exists: with ``Depends(get_db)`` the commit runs after the answer."""
    app = FastAPI()

    @app.post("/notes", status_code=201)
    async def create_note(body: str, session: LateCommitDep) -> None:
        session.add(Note(body=body))

    async with _client(app) as client:
        response = await client.post("/notes", params={"body": "doomed"})
    assert response.status_code == 201
    assert await _committed_bodies(db_url) == []


async def test_get_db_joins_the_test_transaction(db_session: AsyncSession) -> None:
    await db_session.run_sync(_create_tables)
    async with _client(_app([])) as client:
        assert (await client.post("/notes", params={"body": "seen"})).status_code == 200
        assert (await client.post("/notes/crash", params={"body": "unseen"})).status_code == 500

    assert list(await db_session.scalars(select(Note.body))) == ["seen"]


# --- pre-ping ------------------------------------------------------------------------------


@pytest.fixture
async def pooled_engine(
    db_engine: AsyncEngine, db_url: DatabaseURL, db_state: None
) -> AsyncIterator[AsyncEngine]:
    """Make a fresh pooled engine with the pre-ping on the process's engine."""
    await db_engine.dispose()
    settings = dataclasses.replace(get_settings(), pool_pre_ping=True, pool_size=5)
    engine = db.create_engine(db_url, settings)
    db._state.engine = engine
    try:
        yield engine
    finally:
        await engine.dispose()


_TRANSACTION_CONTROL = ("BEGIN", "START", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the pre-ping's round trips: asyncpg ``execute()`` calls other than the
    transaction control SQLAlchemy's adapter sends through it."""
    seen: list[str] = []
    original: Callable[..., Awaitable[str]] = asyncpg.connection.Connection.execute

    async def execute(self: Any, query: str, *args: Any, **kwargs: Any) -> str:
        if not query.lstrip().upper().startswith(_TRANSACTION_CONTROL):
            seen.append(query)
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "execute", execute)
    return seen


async def test_recent_connection_is_not_pinged(
    pooled_engine: AsyncEngine, pings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    pid = await _backend_pid()
    assert await _backend_pid() == pid
    assert pings == []


async def test_idle_healthy_connection_is_pinged_and_kept(
    pooled_engine: AsyncEngine, pings: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.05)
    pid = await _backend_pid()
    await asyncio.sleep(0.1)
    assert await _backend_pid() == pid  # the healthy connection was kept
    assert len(pings) == 1


async def test_recently_used_connection_killed_by_the_server_is_replaced(
    pooled_engine: AsyncEngine,
    db_url: DatabaseURL,
    pings: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 3600.0)  # always "recent": no ping
    old_pid = await _backend_pid()
    assert _pool(pooled_engine).checkedin() == 1

    assert old_pid in await _terminate_other_backends(db_url)

    new_pid = await _backend_pid()
    assert new_pid != old_pid
    assert pings == []  # caught at checkout, without a round trip
    assert await _backend_pid() == new_pid  # and the replacement stays in the pool


async def test_idle_connections_killed_by_the_server_are_replaced(
    pooled_engine: AsyncEngine, db_url: DatabaseURL
) -> None:
    assert db.PING_AFTER_IDLE_SECONDS < 1
    old_pids = await _two_backend_pids()
    assert len(old_pids) == 2
    assert _pool(pooled_engine).checkedin() == 2
    await asyncio.sleep(db.PING_AFTER_IDLE_SECONDS + 0.1)

    assert old_pids <= set(await _terminate_other_backends(db_url))

    new_pids = await _two_backend_pids()
    assert len(new_pids) == 2
    assert not new_pids & old_pids


async def test_failed_ping_replaces_the_whole_pool(
    pooled_engine: AsyncEngine,
    db_url: DatabaseURL,
    pings: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.05)
    old_pids = await _two_backend_pids()
    await asyncio.sleep(0.1)
    await _terminate_other_backends(db_url)
    # The client cannot tell (a half-open socket, say): only the ping can.
    monkeypatch.setattr(liveness, "is_dead", lambda connection: False)

    new_pids = await _two_backend_pids()
    assert len(new_pids) == 2
    assert not new_pids & old_pids
    # One failed ping dropped the pool: the second dead connection was not pinged.
    assert len(pings) == 1
