"""``manage.py shell``: an asyncio REPL with the models, a session and SQL helpers ready.

The mechanism is Python's own ``python -m asyncio``: the console compiles each input with
``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT`` and runs it on one event loop that lives in the main
thread for the whole session, while the console reads input in a thread. The engine and
the session therefore survive from line to line. ``-c CODE`` and a script on stdin run on
the same loop, and so do IPython's await cells (``-i ipython``).

Nothing connects at start: ``engine`` is created on first use and ``session`` binds to it
on its first query, so the shell starts with the database down and says so on first use.
The factories are found by reading the apps' ``factories.py`` and imported on first use
(factory_boy imports Faker), so that start-up costs little more than importing the models.
``--sandbox`` is the exception: it opens a connection and an outer transaction at start,
and rolls it back however the shell ends (EOF, ``exit()``, an error in ``-c``, SIGTERM or
SIGHUP); ``commit()`` inside it releases a savepoint.

A line that breaks the session (a failed statement aborts PostgreSQL's transaction) rolls it
back, in the sandbox to a savepoint taken when the line began (``recovery``). A database
error shows as its message after the user's frames; ``tb()`` or ``manage.py --traceback``
shows the whole chain. Leaving with uncommitted changes asks first, or says they were
dropped.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import contextvars
import inspect
import linecache
import signal
import sys
import threading
import types
import warnings
from collections.abc import Callable, Coroutine, Iterator
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from project.db.target import database_label
from project.exceptions import CommandError, describe
from project.shell.console import Console, setup_readline
from project.shell.namespace import (
    Loaded,
    Namespace,
    build_namespace,
    describe_loaded,
    make_session,
)
from project.shell.recovery import Recovery
from project.shell.tracebacks import database_note, format_error, sql_error

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, AsyncTransaction


Interface = Literal["python", "ipython"]
T = TypeVar("T")

# How long closing the session and rolling back the sandbox may take before the
# connection is dropped instead (the server then rolls back on its own).
CLOSE_TIMEOUT = 10.0
EXIT_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class Shell:
    """One shell session: its loop, session, optional sandbox and namespace."""

    def __init__(
        self, *, sandbox: bool = False, imports: bool = True, full_tracebacks: bool = False
    ) -> None:
        self.sandbox = sandbox
        self.imports = imports
        self.full_tracebacks = full_tracebacks
        self.loop = asyncio.new_event_loop()
        # Every input, the sandbox and the clean-up run in this one context: what one line
        # binds (the sandbox's connection, the factories' session) the next still sees.
        self.context = contextvars.copy_context()
        self.namespace = Namespace()
        self.loaded: Loaded | None = None
        self.session: AsyncSession | None = None
        self.connection: AsyncConnection | None = None
        self.transaction: AsyncTransaction | None = None
        self.database = ""
        self.sandbox_report = ""
        self.exit_report = ""
        self.recovery: Recovery | None = None
        self.closing = threading.Event()
        self._exits = contextlib.ExitStack()
        self._save_history: Callable[[], None] | None = None
        self._ipython: Any = None
        self._cell: asyncio.Task[Any] | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the shell's loop, in the shell's context."""
        return self.loop.run_until_complete(self.task(coroutine))

    def task(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        """Start ``coroutine`` as a task on the shell's loop, in the shell's context."""
        return self.loop.create_task(coroutine, context=self.context)

    def start(self) -> None:
        """Read the settings, open the sandbox if asked, and build the namespace."""
        from project.conf import get_settings

        settings = get_settings()
        asyncio.set_event_loop(self.loop)
        if self.sandbox:
            from project import db

            self.run(self._open_sandbox())
            self.database = str(db.database_url(settings))
        else:
            self.database = database_label(settings)
        if self.imports:
            if self.session is None:
                self.session = make_session()
            self.loaded = self.context.run(
                build_namespace, self.session, connection=self.connection
            )
            self.namespace = self.loaded.namespace
            self._exits.enter_context(self.loaded.exits)
            restart = self._restart_sandbox if self.sandbox else None
            self.recovery = Recovery(self.session, connection=self.connection, restart=restart)

    async def _open_sandbox(self) -> None:
        from project import db

        try:
            self.connection = await db.get_engine().connect()
            self.transaction = await self.connection.begin()
        except Exception as error:
            raise CommandError(f"--sandbox needs the database: {describe(error)}") from None
        # The session, get_db() and session_scope() in the shell join the sandbox.
        self._exits.enter_context(db.bind_to(self.connection))
        self.session = make_session()

    async def _restart_sandbox(self) -> None:
        """Roll the sandbox's outer transaction back and begin another on its connection,
        which reconnects if it was lost: the names bound to it stay valid."""
        if self.connection is None:  # pragma: no cover - only the sandbox restarts
            return
        if self.transaction is not None:
            with contextlib.suppress(Exception):
                await self.transaction.rollback()
        self.transaction = await self.connection.begin()

    def scrub(self, text: str) -> str:
        """Hide the database passwords in ``text``."""
        from project.exceptions import scrub

        return scrub(text)

    def banner(self, interface: Interface, *, verbose: bool) -> str:
        """Return the banner: the REPL, the database, SANDBOX, and what was loaded."""
        repl = "asyncio REPL" if interface == "python" else "IPython"
        lines = [
            f'PasteTrader shell ({repl}, Python {sys.version.split()[0]}): use "await" '
            "directly; Ctrl-D exits.",
            f"Database: {self.database}",
        ]
        if self.sandbox:
            lines.append(
                "SANDBOX: every change is rolled back on exit; commit() makes a savepoint.\n"
                "         Each line runs in a savepoint: a line that fails is undone alone.\n"
                "         engine.connect() is outside the sandbox: use session or connection."
            )
        lines.append(describe_loaded(self.loaded, verbose=verbose))
        return "\n".join(lines)

    def warn(self) -> None:
        """Print the clashes found while loading."""
        for warning in self.loaded.warnings if self.loaded else []:
            print(f"Warning: {warning}", file=sys.stderr)

    # --- ways to run ---------------------------------------------------------------

    def run_source(self, source: str, filename: str) -> int:
        """Run ``source`` as one script (``await`` allowed); return the exit status."""
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            compiled = compile(
                source, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
            )
        except (SyntaxError, ValueError) as error:
            self._show_error(error, filename)
            return 1

        async def main() -> None:
            result = types.FunctionType(compiled, self.namespace)()
            if inspect.iscoroutine(result):
                await result

        status, failure = 0, None
        try:
            self.run(main())
        except SystemExit:
            raise
        except BaseException as error:
            status, failure = 130 if isinstance(error, KeyboardInterrupt) else 1, error
        if failure is not None:
            self._show_error(failure, filename)
        # In the sandbox nothing follows the script but the rollback, which says so.
        if self.recovery is not None and not self.sandbox:
            self._note(self.run(self.recovery.end_line()))
        if failure is not None and not self.full_tracebacks and sql_error(failure) is not None:
            self._note("manage.py --traceback shell shows the full traceback.")
        return status

    def _show_error(self, error: BaseException, filename: str) -> None:
        text = format_error(error, filename, full=self.full_tracebacks)
        sys.stderr.write(self.scrub(text))
        sys.stderr.flush()

    def _note(self, note: str | None) -> None:
        if note:
            print(self.scrub(note), file=sys.stderr, flush=True)

    def interact(self, *, verbose: bool) -> None:
        """Run the console until EOF or ``exit()``: it reads in a thread while the loop
        runs here, in the main thread, like ``python -m asyncio``."""
        console = Console(self)
        self._save_history = setup_readline(self.namespace)
        if self.sandbox:
            sys.ps1 = "[sandbox] >>> "
        print(self.banner("python", verbose=verbose), flush=True)

        def read_eval_print() -> None:
            try:
                console.interact(banner="", exitmsg="")
            finally:
                warnings.filterwarnings(
                    "ignore", message=r"^coroutine .* was never awaited$", category=RuntimeWarning
                )
                with contextlib.suppress(RuntimeError):  # the loop is closed already
                    self.loop.call_soon_threadsafe(self._console_ended)

        threading.Thread(target=read_eval_print, name="shell-console", daemon=True).start()
        while True:
            try:
                self.loop.run_forever()
            except KeyboardInterrupt:
                if console.task is not None and not console.task.done():
                    console.task.cancel()
                    console.interrupted = True
                continue
            break

    def _console_ended(self) -> None:
        # A signal may have ended the shell meanwhile: then the loop runs its clean-up.
        if not self.closing.is_set():
            self.loop.stop()

    def interact_ipython(self, *, verbose: bool) -> None:
        """Run IPython; its cells with a top-level await run on the shell's loop."""
        from IPython.terminal.ipapp import TerminalIPythonApp
        from traitlets.config import Config

        config = Config()
        config.TerminalIPythonApp.display_banner = False
        config.InteractiveShell.autoawait = True
        app: Any = TerminalIPythonApp.instance(config=config, user_ns=self.namespace)
        app.initialize(argv=[])
        self._ipython = app.shell
        app.shell.loop_runner = self._run_cell
        if not self.full_tracebacks:
            self._short_database_errors(app.shell)
        print(self.banner("ipython", verbose=verbose), flush=True)
        app.start()

    def _short_database_errors(self, ipython: Any) -> None:
        """Make IPython show a database error as its message, as the asyncio REPL does
        (IPython's public ``set_custom_exc``); ``%tb`` and ``tb()`` still show it all."""
        from sqlalchemy.exc import DBAPIError

        from project.exceptions import DatabaseUnavailable

        def show(
            shell: Any, etype: type[BaseException], value: BaseException, *_: Any, **__: Any
        ) -> None:
            sys.last_type, sys.last_value, sys.last_traceback = etype, value, value.__traceback__
            text = database_note(value) or sql_error(value) or describe(value)
            print(self.scrub(f"{text}\n(%tb or tb() shows the full traceback.)"), file=sys.stderr)

        ipython.set_custom_exc((DBAPIError, DatabaseUnavailable), show)

    def _run_cell(self, coroutine: Coroutine[Any, Any, T]) -> T:
        self._cell = self.task(self._recovering(coroutine))
        try:
            result: T = self.loop.run_until_complete(self._cell)
            return result
        finally:
            self._cell = None

    async def _recovering(self, cell: Coroutine[Any, Any, T]) -> T:
        # IPython shows the cell's error itself: the session's rollback is said after it.
        if self.recovery is not None and self.sandbox:
            self._note(await self.recovery.begin_line())
        result = await cell
        if self.recovery is not None:
            self._note(await self.recovery.end_line())
        return result

    def stop_quietly(self) -> bool:
        """Make IPython end after a SIGTERM; True if done without raising SystemExit.

        IPython catches SystemExit inside a cell and prints it, so a running await cell is
        cancelled instead, and IPython is told to leave after it.
        """
        if self._ipython is None:
            return False
        self._ipython.ask_exit()
        if self._cell is not None and not self._cell.done():
            self.loop.call_soon_threadsafe(self._cell.cancel)
            return True
        return False

    # --- the end -------------------------------------------------------------------

    def close(self) -> None:
        """Stop what still runs, roll back the sandbox, dispose the engine, close the loop."""
        if self._save_history is not None:
            self._save_history()
        if self.loop.is_closed():
            return
        self.closing.set()
        try:
            self.run(self._close())
        finally:
            self.context.run(self._exits.close)  # what they reset was set in that context
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            asyncio.set_event_loop(None)

    async def _close(self) -> None:
        from project import db

        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_TIMEOUT)
        if self.recovery is not None:
            await self._report_uncommitted(self.recovery)
        if self.session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.close(), CLOSE_TIMEOUT)
        if self.connection is not None:
            await self._close_sandbox(self.connection)
        await db.dispose()

    async def _report_uncommitted(self, recovery: Recovery) -> None:
        dropped = False
        # Leaving must not fail on the check: the changes go all the same.
        with contextlib.suppress(Exception):
            if not recovery.leave_confirmed:
                dropped = await asyncio.wait_for(recovery.uncommitted(), CLOSE_TIMEOUT)
        recovery.close()
        if dropped:
            self.exit_report = (
                "Warning: the session's uncommitted changes were rolled back "
                "(await session.commit() keeps them)."
            )

    async def _close_sandbox(self, connection: AsyncConnection) -> None:
        try:
            if self.transaction is not None:
                await asyncio.wait_for(self.transaction.rollback(), CLOSE_TIMEOUT)
            await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT)
            self.sandbox_report = "Sandbox: rolled back."
        except Exception:
            # The outer transaction was never committed: dropping the connection makes
            # the server roll it back.
            with contextlib.suppress(Exception):
                await connection.invalidate()
            self.sandbox_report = "Sandbox: connection dropped; the server rolled it back."


@contextlib.contextmanager
def _exit_on_signals(shell: Shell) -> Iterator[list[int]]:
    """Turn SIGTERM and SIGHUP into SystemExit so that the shell cleans up; yield the list
    of signals received."""
    received: list[int] = []

    def stop(signum: int, frame: types.FrameType | None) -> None:
        received.append(signum)
        for number in EXIT_SIGNALS:  # the clean-up is under way: ignore the next ones
            signal.signal(number, signal.SIG_IGN)
        if not shell.stop_quietly():
            raise SystemExit(128 + signum)

    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        yield received
        return
    previous = {number: signal.signal(number, stop) for number in EXIT_SIGNALS}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _traceback_option() -> bool:
    """Return whether ``manage.py --traceback`` was given: click's root context holds it."""
    import click

    context = click.get_current_context(silent=True)
    return context is not None and bool(context.find_root().params.get("traceback"))


def run(
    *,
    command: str | None = None,
    sandbox: bool = False,
    interface: Interface = "python",
    imports: bool = True,
    verbose: bool = False,
    full_tracebacks: bool | None = None,
) -> int:
    """Run the shell: ``command``, else a script on stdin, else a REPL; return the status.

    ``full_tracebacks``: show database errors with their whole chain (default: whether
    ``manage.py --traceback`` was given).
    """
    if interface == "ipython":
        import importlib.util

        if importlib.util.find_spec("IPython") is None:
            raise CommandError("IPython is not installed; install it or use -i python")
    if full_tracebacks is None:
        full_tracebacks = _traceback_option()
    shell = Shell(sandbox=sandbox, imports=imports, full_tracebacks=full_tracebacks)
    status = 0
    with _exit_on_signals(shell) as received:
        try:
            shell.start()
            shell.warn()
            script = command is not None or sys.stdin is None or not sys.stdin.isatty()
            if script and verbose:
                print(describe_loaded(shell.loaded, verbose=True), file=sys.stderr)
            if command is not None:
                status = shell.run_source(command, "<string>")
            elif script:
                status = shell.run_source(sys.stdin.read() if sys.stdin else "", "<stdin>")
            elif interface == "ipython":
                shell.interact_ipython(verbose=verbose)
            else:
                shell.interact(verbose=verbose)
        except SystemExit as stop:
            status = _exit_status(stop.code)
        finally:
            if threading.current_thread() is threading.main_thread():
                for number in EXIT_SIGNALS:  # the clean-up must not be cut short
                    signal.signal(number, signal.SIG_IGN)
            shell.close()
    for report in (shell.exit_report, shell.sandbox_report):
        if report:
            with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
                print(report, file=sys.stderr)
    return 128 + received[0] if received else status
