"""Keep the shell's ``session`` usable after a failed statement, and say what was lost.

After one statement fails, PostgreSQL refuses every other statement of the transaction
until it is rolled back, and SQLAlchemy refuses to go on after a failed flush. So after
each line that left the session so, the shell rolls it back and says so in one line.

Outside the sandbox that is the session's whole transaction: its uncommitted changes are
gone. In the sandbox each line runs in a savepoint (the session's, when the session is in a
transaction, else the sandbox connection's), so a failed line is undone alone and the
sandbox, with what earlier lines did, goes on. The line's ORM changes are flushed when it
ends, inside its savepoint, so that a flush that fails undoes the line that made it.

Leaving the shell drops the session's uncommitted changes: ``uncommitted()`` says whether
there are any, asking PostgreSQL whether the transaction wrote anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from project.exceptions import describe

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine, ExceptionContext
    from sqlalchemy.ext.asyncio import (
        AsyncConnection,
        AsyncSession,
        AsyncSessionTransaction,
        AsyncTransaction,
    )
    from sqlalchemy.orm import Session, SessionTransaction

ROLLED_BACK = "The session was rolled back: its uncommitted changes are gone."
LINE_UNDONE = "The sandbox was rolled back to the start of this line; earlier lines' work is kept."
TO_LAST_COMMIT = (
    "The session was rolled back to its last commit(); the sandbox keeps what was committed."
)
SANDBOX_LOST = (
    "The sandbox's transaction could not be saved (its connection was lost, or it failed "
    "outside any savepoint): all of it was rolled back, and the sandbox starts again, empty."
)
# txid_current_if_assigned(): PostgreSQL gives a transaction an id on its first write only.
WROTE = "select txid_current_if_assigned() is not null"


class Recovery:
    """Watch the shell's session; after a line that broke it, roll it back.

    ``connection``: the sandbox's; the lines then run in savepoints. ``restart``: rolls the
    sandbox's outer transaction back and begins another, when no savepoint could save it.
    """

    def __init__(
        self,
        session: AsyncSession,
        *,
        connection: AsyncConnection | None = None,
        restart: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        from sqlalchemy import event

        self.session = session
        self.connection = connection
        self._restart = restart
        # A statement failed on the watched connection: the transaction may be aborted.
        self.failed = False
        # The user was asked about (or told of) the uncommitted changes on leaving.
        self.leave_confirmed = False
        self._watched: Connection | None = None
        self._engine: Engine | None = None
        self._line: AsyncSessionTransaction | AsyncTransaction | None = None
        # The connection's line savepoints the session began inside: released once innermost.
        self._pending: list[AsyncTransaction] = []
        if connection is not None:
            self._watched = connection.sync_connection
            self._listen_to(connection.sync_engine)
        else:
            event.listen(session.sync_session, "after_begin", self._began)
            event.listen(session.sync_session, "after_transaction_end", self._ended)

    @property
    def sandbox(self) -> bool:
        """Return whether the lines run in savepoints."""
        return self.connection is not None

    # --- what failed -----------------------------------------------------------------

    def _listen_to(self, engine: Engine) -> None:
        from sqlalchemy import event

        # handle_error exists per engine only: the listener picks the watched connection.
        if self._engine is None:
            self._engine = engine
            event.listen(engine, "handle_error", self._on_error)

    def _on_error(self, context: ExceptionContext) -> None:
        if context.connection is not None and context.connection is self._watched:
            self.failed = True

    def _began(self, session: Session, transaction: SessionTransaction, conn: Connection) -> None:
        self._watched, self.failed = conn, False
        self._listen_to(conn.engine)

    def _ended(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:  # the connection went back to the pool
            self._watched, self.failed = None, False

    def _chain(self) -> list[SessionTransaction]:
        """Return the session's open transactions, innermost first."""
        sync = self.session.sync_session
        transaction = sync.get_nested_transaction() or sync.get_transaction()
        chain = []
        while transaction is not None:
            chain.append(transaction)
            transaction = transaction.parent
        return chain

    async def _healthy(self) -> bool:
        """Return whether the watched connection still runs statements."""
        try:
            if self.connection is not None:
                await self.connection.exec_driver_sql("select 1")
            else:
                await (await self.session.connection()).exec_driver_sql("select 1")
        except Exception:
            return False
        return True

    async def _broken(self) -> bool:
        chain = self._chain()
        if not all(transaction.is_active for transaction in chain):
            return True  # a failed flush: SQLAlchemy waits for a rollback
        if not self.failed or (self.connection is None and not chain):
            return False
        # The statement may have failed inside a savepoint the user's code rolled back.
        return not await self._healthy()

    # --- lines -----------------------------------------------------------------------

    async def begin_line(self) -> str | None:
        """Begin the line's savepoint (sandbox only); return a note if that failed."""
        await self._release_pending()
        self.failed = False
        chain = self._chain()
        try:
            if not chain:
                self._line = await self._sandbox().begin_nested()
            elif all(transaction.is_active for transaction in chain):
                # A savepoint of the connection under the session's would break the order in
                # which the session releases and rolls back its own.
                self._line = await self.session.begin_nested()
        except Exception as error:
            return f"The line runs without a savepoint: {describe(error)}"
        return None

    async def end_line(self) -> str | None:
        """Roll back what the line broke, or keep what it did; return what was lost."""
        line, self._line = self._line, None
        try:
            failure = ""
            if not await self._broken():
                if line is None:
                    return None
                try:
                    await self.session.flush()  # inside the line's savepoint
                except Exception as error:
                    failure = f"{describe(error)}\n"
                else:
                    await self._release(line)
                    return None
            return failure + await self._roll_back(line)
        except Exception as error:
            return f"The shell could not roll the session back: {describe(error)}"
        finally:
            self.failed = False
            if self.sandbox:
                await self._release_pending()

    async def _roll_back(self, line: AsyncSessionTransaction | AsyncTransaction | None) -> str:
        from sqlalchemy.ext.asyncio import AsyncSessionTransaction, AsyncTransaction

        if not self.sandbox:
            await self.session.rollback()
            return ROLLED_BACK
        undone = TO_LAST_COMMIT
        # A lost connection makes these fail: then the check below starts the sandbox over.
        with contextlib.suppress(Exception):
            if isinstance(line, AsyncSessionTransaction) and line.sync_transaction in (
                self._chain()
            ):
                await line.rollback()
                undone = LINE_UNDONE
            else:  # no line savepoint, the connection's, or the session's ended by commit()
                if self.session.in_transaction():
                    await self.session.rollback()  # its savepoint lies inside the line's
                if isinstance(line, AsyncTransaction) and line.is_active:
                    await line.rollback()
                    undone = LINE_UNDONE
        if await self._healthy():
            return undone
        with contextlib.suppress(Exception):
            await self.session.rollback()
        self._pending.clear()
        if self._restart is not None:
            await self._restart()
        return SANDBOX_LOST

    async def _release(self, line: AsyncSessionTransaction | AsyncTransaction) -> None:
        from sqlalchemy.ext.asyncio import AsyncSessionTransaction

        if isinstance(line, AsyncSessionTransaction):
            # Left open inside a savepoint of the user's, it ends with its parent.
            sync = self.session.sync_session
            if line.is_active and sync.get_nested_transaction() is line.sync_transaction:
                await line.commit()
        elif line.is_active:
            self._pending.append(line)

    async def _release_pending(self) -> None:
        connection = self._sandbox().sync_connection if self._pending else None
        while self._pending:
            savepoint = self._pending[-1]
            if savepoint.is_active:
                if connection is None or connection.get_nested_transaction() is not (
                    savepoint.sync_transaction
                ):
                    return  # the session's savepoint is still open inside it
                await savepoint.commit()
            self._pending.pop()

    def _sandbox(self) -> AsyncConnection:
        if self.connection is None:  # pragma: no cover - only sandbox lines have savepoints
            raise RuntimeError("line savepoints need the sandbox")
        return self.connection

    # --- leaving ---------------------------------------------------------------------

    async def uncommitted(self) -> bool:
        """Return whether leaving drops changes: pending ones, or writes in the transaction.

        Always False in the sandbox, which rolls everything back and says so.
        """
        sync = self.session.sync_session
        if self.sandbox:
            return False
        if sync.new or sync.deleted or any(sync.is_modified(obj) for obj in sync.dirty):
            return True
        if self._watched is None or not self.session.in_transaction():
            return False
        from sqlalchemy import text

        try:
            return bool(await self.session.scalar(text(WROTE)))
        except Exception:  # an aborted transaction: nothing in it could be committed
            return False

    def close(self) -> None:
        """Stop listening to the session and the engine."""
        from sqlalchemy import event

        listeners: list[tuple[Any, str, Callable[..., None]]] = [
            (self.session.sync_session, "after_begin", self._began),
            (self.session.sync_session, "after_transaction_end", self._ended),
            (self._engine, "handle_error", self._on_error),
        ]
        for target, name, listener in listeners:
            if target is not None and event.contains(target, name, listener):
                event.remove(target, name, listener)
