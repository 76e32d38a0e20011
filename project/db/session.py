"""The async engine and sessions.

``engine`` is created on first use, never at import. ``async_session`` makes sessions with
``expire_on_commit=False``; ``get_db()`` (a FastAPI dependency: use it as ``SessionDep``,
which commits before the response) and ``session_scope()`` (for scripts and tasks) commit
on success, roll back and re-raise on error, and always close.
``use_database()`` points all of it at another database; ``bind_to()`` at one connection
(the test plugin's isolated transaction).

``session_scope(read_only=True)``, ``get_read_db()`` and ``ReadSessionDep`` give read-only
sessions: on a healthy replica of ``DATABASE_REPLICA_URLS`` that has replayed this
context's writes, else on the primary (``project.db.replicas``); they refuse writes either
way. ``use_replicas()`` sets the replicas from code.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import uuid4

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection
from sqlalchemy.util.concurrency import await_, greenlet_spawn

from project.conf import Settings, get_settings
from project.db import liveness, target
from project.db.target import database_url
from project.db.url import DatabaseURL
from project.exceptions import ProjectError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from project.db.replicas import Router

    engine: AsyncEngine  # made by get_engine() on first use: see __getattr__

T = TypeVar("T")

# A connection checked in less than this long ago is handed out without a ping round trip
# (HikariCP's rule); one the server closed meanwhile is still caught by its socket's poll.
PING_AFTER_IDLE_SECONDS = 0.5
_LAST_USED = "last_used"


class _State:
    """The engine of this process, the replicas' URLs and the replica router (what a
    task binds to is per context: ``_bound`` and ``_session``)."""

    def __init__(self) -> None:
        self.engine: AsyncEngine | None = None
        # None: the settings' replicas (none once use_database() points elsewhere).
        self.replica_urls: tuple[DatabaseURL, ...] | None = None
        self.router: Router | None = None


_state = _State()


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid4()}__"


# Behind PgBouncer's transaction pooling (before 1.21) each transaction may run on another
# server connection: a cached prepared statement may not exist there, and asyncpg's
# per-process statement names collide between processes. So: no statement cache in
# SQLAlchemy or asyncpg, and a unique name for every statement (sqlalchemy #6467,
# asyncpg #945, #1058).
PGBOUNCER_CONNECT_ARGS: dict[str, Any] = {
    "prepared_statement_cache_size": 0,
    "statement_cache_size": 0,
    "prepared_statement_name_func": _unique_statement_name,
}


def _mark_used(dbapi_connection: Any, record: ConnectionPoolEntry, *_: Any) -> None:
    record.info[_LAST_USED] = time.monotonic()


def _ping_on_checkout(
    dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    """Replace a dead connection before it is handed out, pinging only idle ones.

    Every checkout polls the socket first (no round trip): one the server closed, even
    a moment ago and not yet noticed by asyncpg, is replaced whatever its age.
    """
    driver = dbapi_connection.driver_connection
    if liveness.is_dead(driver):
        raise exc.DisconnectionError("connection closed by the server")
    last_used = record.info.get(_LAST_USED)
    if last_used is not None and time.monotonic() - last_used < PING_AFTER_IDLE_SECONDS:
        return
    try:
        # One simple-protocol round trip: no prepared statement, so PgBouncer-safe.
        await_(driver.execute("SELECT 1"))
    except Exception as error:
        # A dead idle connection usually means a server restart: drop the whole pool.
        raise exc.InvalidatePoolError(f"ping failed: {type(error).__name__}") from None
    record.info[_LAST_USED] = time.monotonic()


def create_engine(
    url: DatabaseURL | None = None,
    settings: Settings | None = None,
    *,
    pooled: bool = True,
    **kwargs: Any,
) -> AsyncEngine:
    """Create an engine with the settings' pool, ping and echo configuration.

    ``pooled=False`` gives a NullPool engine, for one-shot commands that run their own
    event loop (an engine must not outlive its loop). ``DB_PGBOUNCER`` adds
    ``PGBOUNCER_CONNECT_ARGS``.
    """
    settings = settings or get_settings()
    url = url or database_url(settings)
    options: dict[str, Any] = {"echo": settings.debug, "pool_pre_ping": False}
    if pooled:
        options.update(
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.pool_timeout,
            pool_recycle=settings.pool_recycle or -1,
        )
    else:
        options["poolclass"] = NullPool
    if settings.pgbouncer:
        options["connect_args"] = {**PGBOUNCER_CONNECT_ARGS, **kwargs.pop("connect_args", {})}
    options.update(kwargs)
    engine = create_async_engine(url.to_sqlalchemy(), **options)
    if pooled and settings.pool_pre_ping:
        pool = engine.sync_engine.pool
        event.listen(pool, "connect", _mark_used)
        event.listen(pool, "checkin", _mark_used)
        event.listen(pool, "checkout", _ping_on_checkout)
    return engine


def get_engine() -> AsyncEngine:
    """Return the process's engine, creating it on first use."""
    if _state.engine is None:
        engine = create_engine()
        if replica_urls():
            from project.db import replicas

            replicas.track_commits(engine)  # read-your-writes needs each commit's position
        _state.engine = engine
    return _state.engine


def replica_urls() -> tuple[DatabaseURL, ...]:
    """Return the read replicas: those set by ``use_replicas()``, else the settings' when
    ``use_database()`` has not pointed elsewhere (a test database mirrors itself)."""
    if _state.replica_urls is not None:
        return _state.replica_urls
    if target.chosen() is not None:
        return ()
    return get_settings().database_replica_urls


async def use_replicas(urls: Sequence[DatabaseURL] | None) -> None:
    """Serve read-only sessions from ``urls`` (empty: the primary; None: the settings')."""
    await dispose()
    _state.replica_urls = tuple(urls) if urls is not None else None


def create_read_engine(url: DatabaseURL | None, replica: bool) -> AsyncEngine:
    """Create an engine for read-only sessions on a replica, or on the primary (None).

    Reads run in AUTOCOMMIT, one round trip per statement with no BEGIN or COMMIT; on the
    primary the server also refuses writes (``default_transaction_read_only``). Through
    PgBouncer, which passes neither on, each session is a ``BEGIN READ ONLY`` transaction.
    """
    settings = get_settings()
    options: dict[str, Any] = {}
    connect_args: dict[str, Any] = {}
    if replica:
        from project.db.replicas import CONNECT_TIMEOUT

        connect_args["timeout"] = CONNECT_TIMEOUT
    if settings.pgbouncer:
        options["execution_options"] = {"postgresql_readonly": True}
    else:
        options["isolation_level"] = "AUTOCOMMIT"
        if not replica:
            connect_args["server_settings"] = {"default_transaction_read_only": "on"}
    return create_engine(url, settings, connect_args=connect_args, **options)


def get_router() -> Router:
    """Return the replica router of the running event loop, creating it on first use."""
    loop = asyncio.get_running_loop()
    router = _state.router
    if router is None or router.loop is not loop:
        from project.db.replicas import Router

        router = _state.router = Router(replica_urls(), get_settings(), create_read_engine)
    return router


def __getattr__(name: str) -> Any:
    # ``from project.db import engine`` creates the engine then, not at import.
    if name == "engine":
        return get_engine()
    if name == "SessionDep":
        value = globals()["SessionDep"] = _session_dep()
        return value
    if name == "ReadSessionDep":
        value = globals()["ReadSessionDep"] = _session_dep(get_read_db)
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


async def dispose() -> None:
    """Close the engines' connections and stop the replica checks; the next use creates
    new ones."""
    engine, _state.engine = _state.engine, None
    router, _state.router = _state.router, None
    if router is not None:
        await router.dispose()
    if engine is not None:
        await engine.dispose()


async def use_database(url: DatabaseURL | None) -> None:
    """Point the engine, sessions, migrations and commands at ``url`` (None: the settings')."""
    await dispose()
    set_database_url(url)


def set_database_url(url: DatabaseURL | None) -> None:
    """Point the engine and sessions at ``url`` without a running loop, as
    ``use_database()`` does; the current engine is forgotten, so dispose of it first if it
    was used."""
    target.choose(url)
    _state.engine = None
    _state.router = None


# What new sessions join (``bind_to()``) and factories write through (``use_session()``),
# per contextvars context: a task started inside the block inherits them, and concurrent
# tasks, requests and tests never see each other's.
_bound: ContextVar[AsyncConnection | None] = ContextVar("project_db_bound", default=None)
_session: ContextVar[AsyncSession | None] = ContextVar("project_db_session", default=None)


@contextmanager
def bind_to(connection: AsyncConnection) -> Iterator[None]:
    """Make every new session in this context join ``connection``'s transaction while the
    block runs (tasks started inside it too).

    Sessions then commit savepoints, not the outer transaction, so a test (or a sandboxed
    shell) can roll everything back.
    """
    token = _bound.set(connection)
    try:
        yield
    finally:
        _bound.reset(token)


def bound_connection() -> AsyncConnection | None:
    """Return the connection that new sessions in this context join (``bind_to()``)."""
    return _bound.get()


@contextmanager
def use_session(session: AsyncSession) -> Iterator[AsyncSession]:
    """Make factories in this context write through ``session`` while the block runs."""
    token = _session.set(session)
    try:
        yield session
    finally:
        _session.reset(token)


def current_session() -> AsyncSession:
    """Return the session factories write through in this context."""
    session = _session.get()
    if session is None:
        raise ProjectError(
            "no session for factories: use the db_session fixture, use_session(session), "
            "or pass _session=session"
        )
    return session


class _EngineOnFirstUse(Session):
    """A session without a bind of its own runs on the process's engine, which it takes
    (creating it if need be) at its first query and keeps: making a session connects
    nothing and creates no engine, so the shell starts with the database down."""

    _engine: Engine | None = None

    def get_bind(self, mapper: Any = None, **kw: Any) -> Engine | Connection:
        if self.bind is None and not self.binds and kw.get("bind") is None:
            if self._engine is None:
                self._engine = get_engine().sync_engine
            return self._engine
        return super().get_bind(mapper, **kw)


class _LazySessionMaker(async_sessionmaker[AsyncSession]):
    """An async_sessionmaker whose sessions join this context's bound connection
    (``bind_to()``), else the current engine at their first query."""

    def __call__(self, **local_kw: Any) -> AsyncSession:
        if "bind" not in local_kw:
            connection = _bound.get()
            if connection is not None:
                local_kw["bind"] = connection
            elif "sync_session_class" in local_kw:  # a class of its own: bind it now
                local_kw["bind"] = get_engine()
        return super().__call__(**local_kw)


async_session: async_sessionmaker[AsyncSession] = _LazySessionMaker(
    expire_on_commit=False,
    join_transaction_mode="create_savepoint",
    sync_session_class=_EngineOnFirstUse,
)


@asynccontextmanager
async def session_scope(*, read_only: bool = False) -> AsyncIterator[AsyncSession]:
    """Yield a session; commit on success, roll back and re-raise on error, always close.

    ``read_only=True`` gives a session that refuses writes, on a healthy replica that has
    replayed this context's commits, else on the primary. Inside ``bind_to()`` (a test's
    ``db_session``) it joins the bound connection and sees its uncommitted rows.
    """
    if read_only:
        async with _read_session() as session:
            yield session
        return
    session = async_session()
    try:
        yield session
        await session.commit()
    except BaseException:
        await session.rollback()
        raise
    finally:
        await session.close()


@asynccontextmanager
async def _read_session() -> AsyncIterator[AsyncSession]:
    from project.db.replicas import FALLBACK, FELL_BACK, read_only_session_class

    session_class = read_only_session_class()
    connection: AsyncConnection | None = None
    bound = _bound.get()
    if bound is not None:  # a test's transaction: join it, to see its rows, in a savepoint
        session = AsyncSession(
            bind=bound,
            expire_on_commit=False,
            sync_session_class=session_class,
            join_transaction_mode="create_savepoint",
        )
    else:  # a replica's connection (checked out now, to fail over), or the primary's engine
        router = get_router()
        connection, replica = await router.connect()
        session = AsyncSession(
            bind=connection or router.primary,
            expire_on_commit=False,
            sync_session_class=session_class,
            join_transaction_mode="control_fully",
        )
        if replica is not None:
            session.sync_session.info[FALLBACK] = (router, replica)
    try:
        yield session
    finally:
        # Nothing to commit: closing rolls back a BEGIN READ ONLY (PgBouncer) or a test's
        # savepoint, and costs no round trip in AUTOCOMMIT.
        await session.close()
        if connection is not None:
            await connection.close()
        fell_back = session.sync_session.info.pop(FELL_BACK, None)
        if fell_back is not None:
            await greenlet_spawn(fell_back.close)


async def get_db() -> AsyncIterator[AsyncSession]:
    """Yield a session per request (a FastAPI dependency), with ``session_scope()``'s rules.

    In endpoints, declare ``session: SessionDep`` rather than ``Depends(get_db)``. FastAPI
    runs a plain ``Depends`` dependency's exit code after the response has been sent, so
    a COMMIT that fails there (a deferred constraint, a serialization failure) loses the
    row while the client was already told 201. ``SessionDep`` commits before the
    response, and a failing commit answers 500::

        from fastapi import FastAPI

        from apps.tools.models import Tool
        from project.db import SessionDep
        from project.enums import ToolType

        app = FastAPI()

        @app.post("/tools", status_code=201)
        async def create_tool(name: str, session: SessionDep) -> dict[str, str]:
            tool = Tool(name=name, tool_type=ToolType.NOTIFICATION)
            session.add(tool)
            await session.flush()
            return {"id": str(tool.id)}
    """
    async with session_scope() as session:
        yield session


async def get_read_db() -> AsyncIterator[AsyncSession]:
    """Yield a read-only session per request (a FastAPI dependency; declare
    ``session: ReadSessionDep``): on a replica when one is healthy and has this request's
    writes, else on the primary; writes raise ``ReadOnlySessionError``."""
    async with session_scope(read_only=True) as session:
        yield session


if TYPE_CHECKING:
    from typing import Annotated

    from fastapi import Depends

    SessionDep = Annotated[AsyncSession, Depends(get_db, scope="function")]
    ReadSessionDep = Annotated[AsyncSession, Depends(get_read_db, scope="function")]


def _session_dep(dependency: Any = None) -> Any:
    """Return ``SessionDep`` (or ``ReadSessionDep``): the dependency with its exit before
    the response (FastAPI's ``scope="function"``). Built on first use: importing
    ``project.db`` imports no FastAPI."""
    from typing import Annotated

    from fastapi import Depends

    return Annotated[AsyncSession, Depends(dependency or get_db, scope="function")]


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on a new event loop, with an engine of its own disposed before that
    loop ends.

    The way commands and scripts run async code: an engine must never outlive the loop
    its connections belong to, nor be used from another one, so an engine made on a
    running loop elsewhere (a test session's) is set aside meanwhile and then restored.
    """
    saved, _state.engine = _state.engine, None
    saved_router, _state.router = _state.router, None

    async def scoped() -> T:
        try:
            return await main
        finally:
            await dispose()

    try:
        return asyncio.run(scoped())
    finally:
        _state.engine = saved
        _state.router = saved_router


@asynccontextmanager
async def lifespan(app: object) -> AsyncIterator[None]:
    """Dispose the engine when the application stops (FastAPI's ``lifespan=``)."""
    try:
        yield
    finally:
        await dispose()
