"""Read replicas: which one serves a read-only session, and read-your-writes by WAL position.

- ``Router`` holds, for one event loop, the replicas' engines and health, a read-only
  engine on the primary, and a background task that checks each replica's replay
  position and lag. Replicas are taken in turn; one that does not answer, is not a
  standby, or lags more than ``DB_REPLICA_MAX_LAG`` is out of rotation until a later
  check finds it healthy. The primary serves when no replica can.
- After a commit that wrote, the primary's WAL position is recorded in the current
  ``contextvars`` context (a request, a task). A read-only session in that context uses
  a replica only once it has replayed past that position: the checker's cached replay
  position first, else one question to the replica, else the primary.
- ``ReadYourWritesMiddleware`` carries the position across requests: a request that
  wrote answers ``X-Read-After: <lsn>`` (and a ``read_after`` cookie); a later request
  that sends either back reads from a replica only once it has replayed that far.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, MutableMapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from project.exceptions import ProjectError, summary

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
    from sqlalchemy.orm import ORMExecuteState, Session
    from sqlalchemy.pool import ConnectionPoolEntry

    from project.conf import Settings
    from project.db.url import DatabaseURL

# A replica that does not answer within this long is down: a request pays this at most
# once per replica failure, and none while the replica is known to be down.
CONNECT_TIMEOUT = 2.0
HEADER = "x-read-after"
COOKIE = "read_after"
COOKIE_MAX_AGE = 300
_WROTE = "pastetrader_wrote"
_COMMITTED_WRITE = "pastetrader_committed_write"
# Statements that change nothing; anything else run on the primary counts as a write.
_READ_HEADS = ("SELECT", "SHOW", "VALUES", "EXPLAIN", "BEGIN", "COMMIT", "ROLLBACK",
               "SAVEPOINT", "RELEASE", "SET", "START")  # fmt: skip
_REPLICA_SQL = (
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
    "extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
)


class ReadOnlySessionError(ProjectError):
    """A read-only session was asked to write."""


# --- WAL positions --------------------------------------------------------------------


def parse_lsn(text: str) -> int:
    """Return PostgreSQL's ``X/Y`` LSN text as an integer; ValueError if it is not one."""
    high, sep, low = text.strip().partition("/")
    try:
        if not sep or len(high) > 8 or len(low) > 8:
            raise ValueError
        return (int(high, 16) << 32) | int(low, 16)
    except ValueError:
        raise ValueError(f"not an LSN: {text[:40]!r}") from None


def format_lsn(value: int) -> str:
    """Return an integer LSN as PostgreSQL writes it, ``X/Y``."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


class _Position:
    """The WAL position a context's reads must see.

    A request's position (``shared``) is changed in place, so that its middleware sees
    what the endpoint, or a task it started, committed. Any other is replaced on change:
    a task's write then steers neither its parent's reads nor its siblings'.
    """

    __slots__ = ("lsn", "shared", "wrote")

    def __init__(self, lsn: int = 0, *, shared: bool = False) -> None:
        self.lsn = lsn
        self.shared = shared
        self.wrote = False


_position: ContextVar[_Position | None] = ContextVar("pastetrader_read_position", default=None)


def read_position() -> str | None:
    """Return the WAL position this context's reads wait for (``X/Y``), None if none."""
    holder = _position.get()
    return format_lsn(holder.lsn) if holder is not None and holder.lsn else None


def read_after(lsn: str | int) -> None:
    """Make this context's read-only sessions see at least WAL position ``lsn``.

    For a position handed back by a client (``X-Read-After``) or another process.
    """
    value = parse_lsn(lsn) if isinstance(lsn, str) else lsn
    _advance(value, wrote=False)


@contextlib.contextmanager
def fresh_position() -> Iterator[_Position]:
    """Run the block (a request) with a position of its own: no earlier write steers its
    reads, and what it and its tasks commit is seen here at the end."""
    holder = _Position(shared=True)
    token = _position.set(holder)
    try:
        yield holder
    finally:
        _position.reset(token)


def _advance(lsn: int, *, wrote: bool) -> None:
    holder = _position.get()
    if holder is not None and holder.shared:
        holder.lsn = max(holder.lsn, lsn)
        holder.wrote = holder.wrote or wrote
        return
    new = _Position(max(lsn, holder.lsn if holder is not None else 0))
    new.wrote = wrote or (holder is not None and holder.wrote)
    _position.set(new)


def note_commit(lsn: int) -> None:
    """Record that this context committed a write ending at or before ``lsn``."""
    _advance(lsn, wrote=True)


def required_lsn() -> int:
    """Return the position this context's reads wait for (0: none)."""
    holder = _position.get()
    return holder.lsn if holder is not None else 0


# --- noticing commits on the primary --------------------------------------------------


def is_write(statement: str) -> bool:
    """Tell whether SQL ``statement`` may change data (anything but a known read)."""
    head = statement.lstrip()[:9].upper()
    return not head.startswith(_READ_HEADS)


def _note_statement(conn: Connection, cursor: Any, statement: str, *_: Any) -> None:
    if is_write(statement):
        conn.info[_WROTE] = True


def _note_commit(conn: Connection) -> None:
    if conn.info.pop(_WROTE, False):
        conn.info[_COMMITTED_WRITE] = True


def _note_rollback(conn: Connection) -> None:
    conn.info.pop(_WROTE, None)


def _fetch_commit_lsn(dbapi_connection: Any, record: ConnectionPoolEntry, state: Any) -> None:
    """On the connection's return after a commit that wrote, ask for the WAL position.

    One round trip, only for transactions that wrote and only with replicas configured,
    on the connection that committed before anyone else may take it. The insert position
    is at or past the commit record's end, whatever ``synchronous_commit`` says.
    """
    # A write still marked here ran in AUTOCOMMIT (or is being rolled back): count it.
    wrote = record.info.pop(_WROTE, False)
    if not record.info.pop(_COMMITTED_WRITE, False) and not wrote:
        return
    if not getattr(state, "asyncio_safe", True):
        note_commit(1 << 63)  # cannot ask now: read this context's next reads on the primary
        return
    from sqlalchemy.util.concurrency import await_

    try:
        text = await_(dbapi_connection.driver_connection.fetchval(
            "SELECT pg_current_wal_insert_lsn()::text"))  # fmt: skip
    except Exception:  # the connection broke: stay on the primary for this context
        note_commit(1 << 63)
        return
    note_commit(parse_lsn(text))


def track_commits(engine: AsyncEngine) -> None:
    """Record the WAL position of each commit that wrote through ``engine`` (the primary's)."""
    from sqlalchemy import event

    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", _note_statement)
    event.listen(sync, "commit", _note_commit)
    event.listen(sync, "rollback", _note_rollback)
    event.listen(sync.pool, "reset", _fetch_commit_lsn)


# --- the read-only guard --------------------------------------------------------------


def _refuse(what: str) -> ReadOnlySessionError:
    return ReadOnlySessionError(
        f"this session is read-only and cannot {what}; write in session_scope() or SessionDep"
    )


def _refuse_flush(session: Session, *_: Any) -> None:
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        raise _refuse("flush changes")


def _refuse_dml(state: ORMExecuteState) -> None:
    from sqlalchemy import TextClause

    statement = state.statement
    if state.is_insert or state.is_update or state.is_delete:
        raise _refuse(f"run {type(statement).__name__.upper()}")
    if isinstance(statement, TextClause) and is_write(statement.text):
        raise _refuse("run a statement that writes")


_session_class: type[Session] | None = None
# In a read-only session's info: the (router, replica) it may fall back from, and the
# primary connection it fell back to.
FALLBACK = "pastetrader_fallback"
FELL_BACK = "pastetrader_fell_back"


def read_only_session_class() -> type[Session]:
    """Return the Session class of read-only sessions: any flush or DML raises, and a
    statement whose replica connection breaks runs again on the primary."""
    global _session_class
    if _session_class is None:
        from sqlalchemy import event
        from sqlalchemy.exc import DBAPIError
        from sqlalchemy.orm import Session

        class ReadOnlySession(Session):
            """A session that refuses to write, before anything reaches the server."""

            def _execute_internal(self, *args: Any, **kwargs: Any) -> Any:
                try:
                    return super()._execute_internal(*args, **kwargs)
                except DBAPIError as error:
                    fallback = self.info.pop(FALLBACK, None)
                    if fallback is None or not error.connection_invalidated:
                        raise
                    failure = summary(error)
                # The replica went away under the statement. A read in AUTOCOMMIT has no
                # transaction to lose: mark the replica down, run it again on the primary.
                router, replica = fallback
                replica.mark_down(failure)
                self.close()
                primary = self.info[FELL_BACK] = router.primary.sync_engine.connect()
                self.bind = primary
                return super()._execute_internal(*args, **kwargs)

        event.listen(ReadOnlySession, "before_flush", _refuse_flush)
        event.listen(ReadOnlySession, "do_orm_execute", _refuse_dml)
        _session_class = ReadOnlySession
    return _session_class


# --- replicas and their health --------------------------------------------------------


@dataclass
class ReplicaState:
    """What the last check found about one replica."""

    url: str
    up: bool
    lag: float | None
    replay_lsn: str | None
    error: str | None


class Replica:
    """One replica: its engine (made on first use) and what the checks found."""

    def __init__(self, url: DatabaseURL, make_engine: Callable[[], AsyncEngine]) -> None:
        self.url = url
        self._make_engine = make_engine
        self._engine: AsyncEngine | None = None
        self.up = True  # until a connection or a check fails
        self.checked = False
        self.replay_lsn = 0
        self.lag: float | None = None
        self.error: str | None = None

    @property
    def engine(self) -> AsyncEngine:
        """Return the replica's engine, creating it on first use."""
        if self._engine is None:
            self._engine = self._make_engine()
        return self._engine

    def mark_down(self, error: BaseException | str) -> None:
        """Take the replica out of rotation until a check finds it healthy."""
        self.up = False
        self.error = error if isinstance(error, str) else summary(error)

    def state(self) -> ReplicaState:
        """Return what is known about the replica, the URL masked."""
        replay = format_lsn(self.replay_lsn) if self.checked and self.up else None
        return ReplicaState(str(self.url), self.up, self.lag, replay, self.error)

    async def dispose(self) -> None:
        """Close the replica's connections."""
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()


def lag_from(samples: Sequence[tuple[float, int]], replay_lsn: int, now: float) -> float | None:
    """Return how far behind a replica that replayed ``replay_lsn`` is, in seconds.

    ``samples`` are (time, primary's WAL position) pairs, oldest first. The replica has
    everything the primary had at the latest sample it replayed past, so it is at most
    ``now`` minus that sample's time behind, and not behind at all when it replayed past
    the newest: an idle primary makes no lag. None when it is behind every sample.
    """
    if not samples:
        return None
    for when, lsn in reversed(samples):
        if replay_lsn >= lsn:
            return 0.0 if when == samples[-1][0] else now - when
    return None


class Router:
    """The replicas of one event loop and the choice of connection for read-only sessions."""

    def __init__(
        self,
        replica_urls: Sequence[DatabaseURL],
        settings: Settings,
        make_engine: Callable[[DatabaseURL | None, bool], AsyncEngine],
    ) -> None:
        self.loop = asyncio.get_running_loop()
        self.settings = settings
        self.max_lag = settings.replica_max_lag
        # Lag is known to within one interval (an upper bound: a replica may leave rotation
        # that much early, never late), so check many times per lag limit.
        self.interval = min(1.0, max(0.05, self.max_lag / 20))
        self._make_engine = make_engine
        self.replicas = [Replica(url, self._replica_engine(url)) for url in replica_urls]
        self._primary: AsyncEngine | None = None
        self._turn = itertools.count()
        self._samples: deque[tuple[float, int]] = deque(maxlen=512)
        self._checker: asyncio.Task[None] | None = None
        self._first_check: asyncio.Task[None] | None = None

    def _replica_engine(self, url: DatabaseURL) -> Callable[[], AsyncEngine]:
        return lambda: self._make_engine(url, True)

    @property
    def primary(self) -> AsyncEngine:
        """Return the read-only engine on the primary, creating it on first use."""
        if self._primary is None:
            self._primary = self._make_engine(None, False)
        return self._primary

    def healthy(self, replica: Replica) -> bool:
        """Tell whether ``replica`` is in rotation."""
        return replica.up and (replica.lag is None or replica.lag <= self.max_lag)

    async def connect(self) -> tuple[AsyncConnection | None, Replica | None]:
        """Return a replica's connection for a read-only session and that replica, or
        (None, None) for the primary's read-only engine.

        Healthy replicas in turn; one that has not replayed this context's writes yet is
        asked once, and one that fails to connect is marked down and skipped. The primary
        serves when none can.
        """
        if self.replicas:
            await self._ensure_checker()
            need = required_lsn()
            start = next(self._turn)
            asked = False
            count = len(self.replicas)
            for index in range(count):
                replica = self.replicas[(start + index) % count]
                if not self.healthy(replica):
                    continue
                behind = need > replica.replay_lsn
                if behind and asked:
                    continue
                try:
                    conn = await replica.engine.connect()
                except Exception as error:  # any failure to connect: not this request's problem
                    replica.mark_down(error)
                    continue
                if behind:
                    asked = True
                    try:
                        replica.replay_lsn = await _replay_lsn(conn)
                    except Exception as error:
                        await _close_quietly(conn)
                        replica.mark_down(error)
                        continue
                    if need > replica.replay_lsn:
                        await conn.close()
                        continue
                return conn, replica
        # The primary needs no failover: a session bound to the engine checks out on first
        # use, which spares a round of greenlet switching per read.
        return None, None

    async def _ensure_checker(self) -> None:
        """Start the background checks on first use, and wait for the first one once."""
        if self._checker is None:
            self._first_check = self.loop.create_task(self.check())
            self._checker = self.loop.create_task(self._check_forever())
        first = self._first_check
        if first is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(first), CONNECT_TIMEOUT + 1)
            if first.done():
                self._first_check = None

    async def _check_forever(self) -> None:
        if self._first_check is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._first_check)
        while True:
            await asyncio.sleep(self.interval)
            with contextlib.suppress(Exception):  # a failed round of checks: try again
                await self.check()

    async def check(self) -> None:
        """Check every replica once: answers, is a standby, replay position and lag."""
        now = time.monotonic()
        # A primary that does not answer tells nothing about the lag: keep the old samples.
        with contextlib.suppress(Exception):
            async with self.primary.connect() as conn:
                sql = "SELECT pg_current_wal_flush_lsn()::text"
                text = (await conn.exec_driver_sql(sql)).scalar()
            self._samples.append((now, parse_lsn(str(text))))
        await asyncio.gather(*(self._check(replica) for replica in self.replicas))

    async def _check(self, replica: Replica) -> None:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT + 1):
                async with replica.engine.connect() as conn:
                    row = (await conn.exec_driver_sql(_REPLICA_SQL)).one()
        except Exception as error:
            replica.mark_down(error)
            replica.checked = True
            return
        in_recovery, replay, server_lag = tuple(row)
        replica.checked = True
        if not in_recovery or replay is None:
            replica.mark_down("not a standby (pg_is_in_recovery() is false)")
            return
        replica.replay_lsn = max(replica.replay_lsn, parse_lsn(replay))
        lag = lag_from(self._samples, replica.replay_lsn, time.monotonic())
        if lag is None:  # behind every sample kept: the server's own estimate
            oldest = time.monotonic() - self._samples[0][0] if self._samples else 0.0
            lag = max(oldest, server_lag or 0.0)
        replica.lag = lag
        replica.up = True
        replica.error = None

    def states(self) -> list[ReplicaState]:
        """Return what is known about each replica."""
        return [replica.state() for replica in self.replicas]

    async def dispose(self) -> None:
        """Stop the checks and close every connection this router opened."""
        for task in (self._checker, self._first_check):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._checker = self._first_check = None
        for replica in self.replicas:
            await replica.dispose()
        primary, self._primary = self._primary, None
        if primary is not None:
            await primary.dispose()


async def _replay_lsn(conn: AsyncConnection) -> int:
    text = (await conn.exec_driver_sql("SELECT pg_last_wal_replay_lsn()::text")).scalar()
    await conn.commit()  # the session then begins afresh on the connection
    return parse_lsn(str(text)) if text is not None else 0


async def _close_quietly(conn: AsyncConnection) -> None:
    with contextlib.suppress(Exception):
        await conn.invalidate()
        await conn.close()


# --- reporting (check, showdb) --------------------------------------------------------


async def describe(
    primary: DatabaseURL, replicas: Sequence[DatabaseURL], *, timeout: float = 5.0
) -> list[ReplicaState]:
    """Connect to the primary and each replica once; return each replica's state and lag.

    Lag is 0 when the replica replayed everything the primary has flushed, else the time
    since its last replayed commit.
    """
    from project.db import admin as dbadmin

    primary_lsn: int | None = None
    with contextlib.suppress(Exception):
        conn = await dbadmin.connect(primary, timeout=timeout)
        try:
            primary_lsn = parse_lsn(await conn.fetchval("SELECT pg_current_wal_flush_lsn()::text"))
        finally:
            await conn.close()

    async def one(url: DatabaseURL) -> ReplicaState:
        try:
            conn = await dbadmin.connect(url, timeout=timeout)
            try:
                in_recovery, replay, server_lag = await conn.fetchrow(_REPLICA_SQL)
            finally:
                await conn.close()
        except Exception as error:
            return ReplicaState(str(url), False, None, None, summary(error))
        if not in_recovery or replay is None:
            return ReplicaState(str(url), False, None, None, "not a standby")
        lag = 0.0 if primary_lsn is not None and parse_lsn(replay) >= primary_lsn else server_lag
        return ReplicaState(str(url), True, lag, replay, None)

    return list(await asyncio.gather(*(one(url) for url in replicas)))


# --- carrying the position across requests --------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


def _position_from(headers: Sequence[tuple[bytes, bytes]]) -> int:
    """Return the position a request hands back (header or cookie), 0 if none or bad."""
    best = 0
    for name, value in headers:
        text: str | None = None
        if name == b"x-read-after":
            text = value.decode("latin-1")
        elif name == b"cookie" and b"read_after=" in value:
            for part in value.decode("latin-1").split(";"):
                key, _, val = part.strip().partition("=")
                if key == COOKIE:
                    text = val
        if text:
            with contextlib.suppress(ValueError):
                best = max(best, parse_lsn(text))
    return best


class ReadYourWritesMiddleware:
    """Give each HTTP request a position of its own, taken from ``X-Read-After`` or the
    ``read_after`` cookie, and answer a request that wrote with its new position."""

    def __init__(self, app: ASGIApp, enabled: Callable[[], bool]) -> None:
        self.app = app
        self.enabled = enabled

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http" or not self.enabled():
            await self.app(scope, receive, send)
            return
        with fresh_position() as holder:
            holder.lsn = _position_from(scope.get("headers") or ())

            async def send_position(message: Message) -> None:
                if message["type"] == "http.response.start" and holder.wrote:
                    lsn = format_lsn(holder.lsn).encode()
                    cookie = f"{COOKIE}={lsn.decode()}; Max-Age={COOKIE_MAX_AGE}; Path=/; "
                    message["headers"] = [
                        *message.get("headers", ()),
                        (HEADER.encode(), lsn),
                        (b"set-cookie", (cookie + "HttpOnly; SameSite=Lax").encode()),
                    ]
                await send(message)

            await self.app(scope, receive, send_position)
