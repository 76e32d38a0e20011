"""The interactive console: input read in a thread, run on the shell's loop, with tab
completion, a history file, and a question before leaving uncommitted changes."""

from __future__ import annotations

import ast
import asyncio
import code
import concurrent.futures
import contextlib
import inspect
import sys
import threading
import types
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from project.shell.tracebacks import database_note, format_error, sql_error

if TYPE_CHECKING:
    from project.shell import Shell
    from project.shell.namespace import Namespace

HISTORY_FILE = Path("~/.pastetrader_history")
HISTORY_LENGTH = 10_000
T = TypeVar("T")


class Completer:
    """Complete the shell's names, lazy ones included, by rlcompleter's rules."""

    def __init__(self, namespace: Namespace) -> None:
        import rlcompleter

        class Names(rlcompleter.Completer):
            def global_matches(self, text: str) -> list[str]:
                matches: list[str] = super().global_matches(text)
                return matches + [name for name in namespace.lazy if name.startswith(text)]

        self._completer = Names(namespace)

    def complete(self, text: str, state: int) -> str | None:
        """Return the ``state``-th completion of ``text`` (readline's protocol)."""
        found: str | None = self._completer.complete(text, state)
        return found


class Console(code.InteractiveConsole):
    """A console whose inputs run on the shell's loop, ``await`` included
    (``asyncio.__main__``'s AsyncIOInteractiveConsole).

    After each input the shell's session is rolled back if the input broke it, and leaving
    with uncommitted changes asks first.
    """

    def __init__(self, shell: Shell) -> None:
        super().__init__(shell.namespace)
        self.compile.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        self.shell = shell
        self.task: asyncio.Task[Any] | None = None
        self.interrupted = False
        self._hinted = False

    def runcode(self, code: types.CodeType) -> None:
        recovery = self.shell.recovery
        if recovery is not None and recovery.sandbox:
            self._note(self._on_loop(recovery.begin_line()))
        hint = False
        raised = True
        try:
            outcome = self._execute(code)
            raised = False
        except BaseException as error:
            if self.shell.closing.is_set():
                # The shell is ending (a signal): no traceback and no new prompt.
                threading.Event().wait()
            if self.interrupted:
                self.write("\nKeyboardInterrupt\n")
            elif isinstance(error, concurrent.futures.CancelledError):
                self.write("\nCancelledError\n")
            else:
                self.showtraceback()
                hint = not self._hinted and self._shortened(error)
        else:
            if isinstance(outcome, Leave):
                self.leave(outcome.request)
        if recovery is not None and (raised or recovery.sandbox or recovery.failed):
            self._note(self._on_loop(recovery.end_line()))
        if hint:
            self._hinted = True
            self.write("(tb() shows the full traceback.)\n")

    def _execute(self, code: types.CodeType) -> Any:
        """Run ``code`` on the loop and return its value; ``exit()`` returns a Leave."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        loop = self.shell.loop

        def start() -> None:
            # Runs in the loop's thread: plain code may use the running loop too.
            self.task = None
            self.interrupted = False
            try:
                result = types.FunctionType(code, self.locals)()
            except SystemExit as request:
                future.set_result(Leave(request))
                return
            except KeyboardInterrupt as error:
                self.interrupted = True
                future.set_exception(error)
                return
            except BaseException as error:
                future.set_exception(error)
                return
            if not inspect.iscoroutine(result):
                future.set_result(result)
                return
            self.task = self.shell.task(_leave_on_exit(result))
            self.task.add_done_callback(lambda task: _copy_outcome(task, future))

        # In the shell's context, as every input: what one line binds, the next sees.
        loop.call_soon_threadsafe(start, context=self.shell.context)
        return future.result()

    def _on_loop(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the shell's loop, in the shell's context, from the
        console's thread (``run_coroutine_threadsafe`` would run it in a copy of this
        thread's context)."""
        if self.shell.closing.is_set():  # a signal ends the shell: the loop is cleaning up
            coroutine.close()
            threading.Event().wait()
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def start() -> None:
            self.shell.task(coroutine).add_done_callback(lambda task: _copy_outcome(task, future))

        self.shell.loop.call_soon_threadsafe(start)
        return future.result()

    def _note(self, note: str | None) -> None:
        if note:
            self.write(f"{note}\n")

    def _shortened(self, error: BaseException) -> bool:
        return not self.shell.full_tracebacks and sql_error(error) is not None

    def showtraceback(self) -> None:
        error = sys.exc_info()[1]
        if error is None:  # pragma: no cover - only called while handling an error
            return
        sys.last_type, sys.last_value, sys.last_traceback = type(error), error, error.__traceback__
        text = format_error(error, self.filename, full=self.shell.full_tracebacks)
        if database_note(error) is not None:
            text += "The shell goes on; try again once the database is up.\n"
        self.write(text)

    def write(self, data: str) -> None:
        sys.stderr.write(self.shell.scrub(data))

    # --- leaving ---------------------------------------------------------------------

    def raw_input(self, prompt: str = "") -> str:
        try:
            return input(prompt)
        except EOFError:
            if self.may_leave(after_eof=True):
                raise
            self.resetbuffer()  # stay, at a fresh prompt
            return ""

    def leave(self, request: SystemExit) -> None:
        """End the shell as ``exit()`` asked, unless the user would rather stay."""
        closed = sys.stdin
        if closed is not None and closed.closed:  # site's exit() closes it before raising
            sys.stdin = open(  # noqa: SIM115 - it stays open as sys.stdin
                0, encoding=closed.encoding, errors=closed.errors, closefd=False
            )
        if not self.may_leave(after_eof=False):
            return

        def end() -> None:
            raise request  # out of the loop, in the main thread: the shell ends

        self.shell.loop.call_soon_threadsafe(end)
        threading.Event().wait()

    def may_leave(self, *, after_eof: bool) -> bool:
        """Return whether to leave: yes, unless the session has uncommitted changes and the
        user says no when asked."""
        recovery = self.shell.recovery
        if recovery is None or recovery.sandbox:  # the sandbox says what it rolled back
            return True
        leaving = True
        if self._on_loop(recovery.uncommitted()):
            self.write(
                ("\n" if after_eof else "")
                + "Warning: the session has uncommitted changes; leaving rolls them back "
                "(await session.commit() keeps them).\n"
            )
            try:
                leaving = input("Leave anyway? [y/N] ").strip().lower() in {"y", "yes"}
            except EOFError:
                self.write("\n")
        recovery.leave_confirmed = leaving  # then the shell need not report them on closing
        return leaving


@dataclass(frozen=True)
class Leave:
    """What an input returns that called ``exit()``: the request, held until confirmed."""

    request: SystemExit


async def _leave_on_exit(coroutine: Coroutine[Any, Any, Any]) -> Any:
    # An await input that calls exit() would otherwise end the loop before anyone asks.
    try:
        return await coroutine
    except SystemExit as request:
        return Leave(request)


def _copy_outcome(task: asyncio.Task[Any], future: concurrent.futures.Future[Any]) -> None:
    if future.done():
        return
    if task.cancelled():
        future.cancel()
    elif task.exception() is not None:
        future.set_exception(task.exception())
    else:
        future.set_result(task.result())


def setup_readline(namespace: Namespace) -> Callable[[], None] | None:
    """Turn on tab completion and the history file; return a function that saves it."""
    try:
        import readline
    except ImportError:  # pragma: no cover - Python built without readline
        return None
    readline.set_completer(Completer(namespace).complete)
    if "libedit" in (readline.__doc__ or ""):  # pragma: no cover - macOS
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")
    history = HISTORY_FILE.expanduser()
    with contextlib.suppress(OSError):
        readline.read_history_file(history)
    readline.set_history_length(HISTORY_LENGTH)

    def save() -> None:
        with contextlib.suppress(OSError):
            readline.write_history_file(history)

    return save
