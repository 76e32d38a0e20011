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
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import code
import concurrent.futures
import contextlib
import inspect
import linecache
import signal
import sys
import textwrap
import threading
import traceback
import types
import warnings
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from project.exceptions import CommandError

if TYPE_CHECKING:
    from types import ModuleType

    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, AsyncTransaction

    from project.apps import AppConfig
    from project.conf import Settings

Interface = Literal["python", "ipython"]
T = TypeVar("T")

HISTORY_FILE = Path("~/.pastetrader_history")
HISTORY_LENGTH = 10_000
SQL_NAMES = ("select", "insert", "update", "delete", "func", "text", "and_", "or_")
# How long closing the session and rolling back the sandbox may take before the
# connection is dropped instead (the server then rolls back on its own).
CLOSE_TIMEOUT = 10.0
EXIT_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
WIDTH = 100


# --- the names ---------------------------------------------------------------------


@dataclass(frozen=True)
class Preloaded:
    """One name the shell defines, and where it came from."""

    name: str
    kind: str  # "model", "factory", "app" or "name"
    origin: str


class Namespace(dict[str, Any]):
    """The shell's globals; a few values (``engine``) are made on first use.

    Module-level code reads names with ``__getitem__`` when its globals are a dict
    subclass, so ``__missing__`` runs the first time a lazy name is read, and never before.
    """

    def __init__(self) -> None:
        super().__init__(__name__="__console__", __doc__=None, __builtins__=builtins)
        self.lazy: dict[str, Callable[[], Any]] = {}

    def __missing__(self, key: str) -> Any:
        make = self.lazy.get(key)
        if make is None:
            raise KeyError(key)
        value = self[key] = make()
        del self.lazy[key]
        return value


@dataclass
class Loaded:
    """What ``build_namespace()`` bound, and the clashes it reported."""

    namespace: Namespace = field(default_factory=Namespace)
    names: list[Preloaded] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Holds the factories' use of the shell's session, from the first factory used on.
    exits: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def add(self, name: str, value: Any, kind: str, origin: str, *, instead: str = "") -> bool:
        """Bind ``name`` unless it is taken: then the first stays and the clash is reported
        (``instead`` says how to reach the one left out)."""
        taken = next((p for p in self.names if p.name == name), None)
        if taken is not None:
            hint = f"; use {instead}" if instead else ""
            self.warnings.append(
                f"{kind} {name} from {origin} clashes with the {taken.kind} from "
                f"{taken.origin}, which keeps the name{hint}"
            )
            return False
        self.namespace[name] = value
        self.names.append(Preloaded(name, kind, origin))
        return True

    def add_lazy(
        self, name: str, make: Callable[[], Any], kind: str, origin: str, *, instead: str = ""
    ) -> bool:
        """Bind ``name`` to what ``make()`` returns, called on first use; clashes as add()."""
        if not self.add(name, None, kind, origin, instead=instead):
            return False
        del self.namespace[name]
        self.namespace.lazy[name] = make
        return True


class AppNames:
    """One app's models and factories, as attributes: ``tools.Tool``, ``tools.ToolFactory``.

    Factories are imported on first use, like the top-level names.
    """

    def __init__(
        self, label: str, members: dict[str, Any], lazy: dict[str, Callable[[], Any]]
    ) -> None:
        self.__dict__.update(members)
        self._label = label
        self._lazy = lazy

    def __getattr__(self, name: str) -> Any:
        make = self.__dict__.get("_lazy", {}).get(name)
        if make is None:
            raise AttributeError(f"app {self._label!r} has no model or factory {name!r}")
        value = make()
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        return sorted({n for n in self.__dict__ if not n.startswith("_")} | set(self._lazy))

    def __repr__(self) -> str:
        return f"<app {self._label}: {', '.join(self.__dir__())}>"


def _get_engine() -> Any:
    from project import db

    return db.get_engine()


def make_session() -> AsyncSession:
    """Return an AsyncSession that creates the engine and connects on its first query."""
    from sqlalchemy.ext.asyncio import AsyncSession
    from sqlalchemy.orm import Session

    class EngineOnFirstUse(Session):
        def get_bind(self, mapper: Any = None, **kw: Any) -> Engine | Connection:
            if self.bind is None:
                from project import db

                self.bind = db.get_engine().sync_engine
            return super().get_bind(mapper, **kw)

    return AsyncSession(sync_session_class=EngineOnFirstUse, expire_on_commit=False)


def factory_names(config: AppConfig) -> list[str] | None:
    """Return the ``*Factory`` classes defined in the app's ``factories.py``, read without
    importing it (factory_boy brings in Faker: tens of milliseconds at every start).

    None when the app has a ``factories`` package instead, or none at all.
    """
    path = config.path / "factories.py"
    if not path.is_file():
        return None
    tree = ast.parse(path.read_bytes(), str(path))
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name.endswith("Factory")
    ]


def _is_factory(value: object) -> bool:
    from project.factories import AsyncFactory

    return isinstance(value, type) and issubclass(value, AsyncFactory) and not value._meta.abstract


def build_namespace(session: AsyncSession, *, connection: AsyncConnection | None = None) -> Loaded:
    """Return the shell's names: core objects, SQL helpers, models, factories and apps.

    On a clash the first name stays (core names, then models and factories in
    ``INSTALLED_APPS`` order) and the clash is reported; every app's models and factories
    stay reachable as ``<app label>.<Name>``. ``connection``: the sandbox's.
    """
    import sqlalchemy

    from project.apps import apps
    from project.conf import get_settings
    from project.models import Base

    loaded = Loaded()
    loaded.add("Base", Base, "name", "project.models")
    loaded.add("settings", get_settings(), "name", "project.conf.get_settings()")
    if connection is None:
        loaded.add_lazy("engine", _get_engine, "name", "project.db.engine, created on first use")
        loaded.add("session", session, "name", "AsyncSession, connects on its first query")
    else:
        loaded.add("engine", connection.engine, "name", "project.db.engine, outside the sandbox")
        loaded.add("connection", connection, "name", "AsyncConnection holding the sandbox")
        loaded.add("session", session, "name", "AsyncSession in the sandbox")
    for name in SQL_NAMES:
        loaded.add(name, getattr(sqlalchemy, name), "name", "sqlalchemy")
    loaded.add("asyncio", asyncio, "name", "asyncio")

    apps.load_models()
    configs = apps.get_app_configs()
    order = {config.label: index for index, config in enumerate(configs)}

    def app_of(module: str) -> str | None:
        for config in configs:
            if module == config.name or module.startswith(f"{config.name}."):
                return config.label
        return None

    def sort_key(model: type[Any]) -> tuple[int, str]:
        label = app_of(model.__module__)
        return (order[label] if label is not None else len(order), model.__name__)

    members: dict[str, dict[str, Any]] = {config.label: {} for config in configs}
    lazy: dict[str, dict[str, Callable[[], Any]]] = {config.label: {} for config in configs}
    for model in sorted((mapper.class_ for mapper in Base.registry.mappers), key=sort_key):
        label = app_of(model.__module__)
        instead = f"{label}.{model.__name__}" if label else ""
        loaded.add(model.__name__, model, "model", model.__module__, instead=instead)
        if label is not None:
            members[label][model.__name__] = model

    bound: list[AsyncSession] = []

    def import_factories(config: AppConfig) -> ModuleType:
        module = config.import_module("factories")
        if module is None:  # pragma: no cover - the file was there a moment ago
            raise CommandError(f"{config.name}.factories has gone")
        if not bound:  # the first factory used: factories write through the shell's session
            from project.factories import use_session

            bound.append(loaded.exits.enter_context(use_session(session)))
        return module

    for config in configs:
        names = factory_names(config)
        if names is None:  # not a plain module: import it to see
            module = import_factories(config) if config.has_module("factories") else None
            names = [
                name
                for name, value in vars(module or object()).items()
                if _is_factory(value) and app_of(value.__module__) == config.label
            ]
        origin = f"{config.name}.factories, imported on first use"
        for name in names:

            def make(config: AppConfig = config, name: str = name) -> Any:
                return getattr(import_factories(config), name)

            loaded.add_lazy(name, make, "factory", origin, instead=f"{config.label}.{name}")
            lazy[config.label][name] = make
    for config in configs:
        if members[config.label] or lazy[config.label]:
            app = AppNames(config.label, members[config.label], lazy[config.label])
            loaded.add(config.label, app, "app", f"{config.name}: its models and factories")
    return loaded


# --- what the shell says -----------------------------------------------------------


def database_label(settings: Settings) -> str:
    """Return the configured database as text, password hidden, without connecting."""
    if settings.database_url is not None:
        return str(settings.database_url)
    from project import embedded

    url = embedded.running_url()
    if url is not None:
        return f"{url} (embedded)"
    return f"the embedded PostgreSQL in {embedded.DATA_DIR} (not running; starts on first use)"


def database_note(error: BaseException) -> str | None:
    """Return a line saying the database is unavailable, if that is what ``error`` means."""
    from project.errors import describe_database_error
    from project.exceptions import DatabaseUnavailable

    if isinstance(error, DatabaseUnavailable):
        return f"The database is unavailable: {error}"
    described = describe_database_error(error)
    if described is not None and described.startswith("cannot connect"):
        return f"The database is unavailable: {described}"
    return None


def format_error(error: BaseException, filename: str) -> str:
    """Return ``error``'s traceback from the first frame of ``filename`` (the user's code,
    not the shell's); a database that is down gets one line instead of the driver's frames."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    if tb is None and isinstance(error, SyntaxError):
        return "".join(traceback.format_exception_only(type(error), error))
    note = database_note(error)
    if note is None:
        return "".join(traceback.format_exception(type(error), error, tb))
    user_frames, frame = 0, tb
    while frame is not None and frame.tb_frame.f_code.co_filename == filename:
        user_frames, frame = user_frames + 1, frame.tb_next
    lines = traceback.format_exception(type(error), error, tb, limit=user_frames, chain=False)
    return "".join(lines) + note + "\n"


def _wrap(title: str, names: list[str]) -> str:
    return textwrap.fill(
        ", ".join(names),
        WIDTH,
        initial_indent=f"{title:<11}",
        subsequent_indent=" " * 11,
        break_on_hyphens=False,
    )


def describe_loaded(loaded: Loaded | None, *, verbose: bool) -> str:
    """Return what was loaded: grouped by kind, or (``verbose``) each name and its origin."""
    if loaded is None:
        return "Nothing loaded (--no-imports)."
    names = loaded.names
    if verbose:
        width = max(len(p.name) for p in names)
        return "\n".join(f"  {p.name:<{width}}  {p.kind:<7}  {p.origin}" for p in names)
    lines = []
    for kind, title in (("model", "Models:"), ("factory", "Factories:"), ("app", "Apps:")):
        members = [p.name for p in names if p.kind == kind]
        if members:
            lines.append(_wrap(title, members))
    lines.append(_wrap("Also:", [p.name for p in names if p.kind == "name"]))
    lines.append("(-v lists where each name comes from)")
    return "\n".join(lines)


# --- the interactive console -------------------------------------------------------


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


def _setup_readline(namespace: Namespace) -> Callable[[], None] | None:
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


# --- one shell session -------------------------------------------------------------


class Shell:
    """One shell session: its loop, session, optional sandbox and namespace."""

    def __init__(self, *, sandbox: bool = False, imports: bool = True) -> None:
        self.sandbox = sandbox
        self.imports = imports
        self.loop = asyncio.new_event_loop()
        self.namespace = Namespace()
        self.loaded: Loaded | None = None
        self.session: AsyncSession | None = None
        self.connection: AsyncConnection | None = None
        self.transaction: AsyncTransaction | None = None
        self.database = ""
        self.sandbox_report = ""
        self.closing = threading.Event()
        self._passwords: list[str] = []
        self._exits = contextlib.ExitStack()
        self._save_history: Callable[[], None] | None = None
        self._ipython: Any = None
        self._cell: asyncio.Task[Any] | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the shell's loop."""
        return self.loop.run_until_complete(coroutine)

    def start(self) -> None:
        """Read the settings, open the sandbox if asked, and build the namespace."""
        from project.conf import get_settings

        settings = get_settings()
        self._passwords = [
            url.password
            for url in (settings.database_url, settings.database_direct_url)
            if url is not None and url.password
        ]
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
            self.loaded = build_namespace(self.session, connection=self.connection)
            self.namespace = self.loaded.namespace
            self._exits.enter_context(self.loaded.exits)

    async def _open_sandbox(self) -> None:
        from sqlalchemy.ext.asyncio import AsyncSession

        from project import db
        from project.management import describe

        try:
            self.connection = await db.get_engine().connect()
            self.transaction = await self.connection.begin()
        except Exception as error:
            raise CommandError(f"--sandbox needs the database: {describe(error)}") from None
        # get_db() and session_scope() in the shell join the sandbox too.
        self._exits.enter_context(db.bind_to(self.connection))
        self.session = AsyncSession(
            bind=self.connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )

    def scrub(self, text: str) -> str:
        """Hide the database passwords in ``text``."""
        for password in self._passwords:
            text = text.replace(password, "***")
        return text

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

        try:
            self.run(main())
        except SystemExit:
            raise
        except KeyboardInterrupt as error:
            self._show_error(error, filename)
            return 130
        except BaseException as error:
            self._show_error(error, filename)
            return 1
        return 0

    def _show_error(self, error: BaseException, filename: str) -> None:
        sys.stderr.write(self.scrub(format_error(error, filename)))
        sys.stderr.flush()

    def interact(self, *, verbose: bool) -> None:
        """Run the console until EOF or ``exit()``: it reads in a thread while the loop
        runs here, in the main thread, like ``python -m asyncio``."""
        console = Console(self)
        self._save_history = _setup_readline(self.namespace)
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
        print(self.banner("ipython", verbose=verbose), flush=True)
        app.start()

    def _run_cell(self, coroutine: Coroutine[Any, Any, T]) -> T:
        self._cell = self.loop.create_task(coroutine)
        try:
            result: T = self.loop.run_until_complete(self._cell)
            return result
        finally:
            self._cell = None

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
            self._exits.close()
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
        if self.session is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.close(), CLOSE_TIMEOUT)
        if self.connection is not None:
            await self._close_sandbox(self.connection)
        await db.dispose()

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


def run(
    *,
    command: str | None = None,
    sandbox: bool = False,
    interface: Interface = "python",
    imports: bool = True,
    verbose: bool = False,
) -> int:
    """Run the shell: ``command``, else a script on stdin, else a REPL; return the status."""
    if interface == "ipython":
        import importlib.util

        if importlib.util.find_spec("IPython") is None:
            raise CommandError("IPython is not installed; install it or use -i python")
    shell = Shell(sandbox=sandbox, imports=imports)
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
    if shell.sandbox_report:
        with contextlib.suppress(OSError):  # after SIGHUP the terminal may be gone
            print(shell.sandbox_report, file=sys.stderr)
    return 128 + received[0] if received else status
