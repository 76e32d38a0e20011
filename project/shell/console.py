"""The interactive console: input read in a thread, run on the shell's loop, with tab
completion and a history file."""

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
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from project.shell.tracebacks import database_note, format_error

if TYPE_CHECKING:
    from project.shell import Shell
    from project.shell.namespace import Namespace

HISTORY_FILE = Path("~/.pastetrader_history")
HISTORY_LENGTH = 10_000


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
    (``asyncio.__main__``'s AsyncIOInteractiveConsole)."""

    def __init__(self, shell: Shell) -> None:
        super().__init__(shell.namespace)
        self.compile.compiler.flags |= ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        self.shell = shell
        self.task: asyncio.Task[Any] | None = None
        self.interrupted = False

    def runcode(self, code: types.CodeType) -> None:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        loop = self.shell.loop

        def start() -> None:
            # Runs in the loop's thread: plain code may use the running loop too.
            self.task = None
            self.interrupted = False
            try:
                result = types.FunctionType(code, self.locals)()
            except SystemExit:
                raise  # out of the loop: the shell ends
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
            self.task = loop.create_task(result)
            self.task.add_done_callback(lambda task: _copy_outcome(task, future))

        loop.call_soon_threadsafe(start)
        try:
            future.result()
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

    def showtraceback(self) -> None:
        error = sys.exc_info()[1]
        if error is None:  # pragma: no cover - only called while handling an error
            return
        sys.last_type, sys.last_value, sys.last_traceback = type(error), error, error.__traceback__
        text = format_error(error, self.filename)
        if database_note(error) is not None:
            text += "The shell goes on; try again once the database is up.\n"
        self.write(text)

    def write(self, data: str) -> None:
        sys.stderr.write(self.shell.scrub(data))


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
