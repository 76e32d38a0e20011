"""The project's pytest plugin: async tests, per-worker databases, isolation fixtures.

- ``async def`` tests and fixtures run with no marker, on one loop per process. A test,
  its function-scoped fixtures' setup and teardown share one ``contextvars`` context, so
  what an async fixture sets (``bind_to()``, ``use_session()``) the test sees.
- Each test process makes sure the migrated template exists (one at a time, under an
  advisory lock), clones it into its own database and points ``project.db`` at it; the
  xdist controller only checks that the server answers, and imports no SQLAlchemy.
- ``db_session``: an AsyncSession inside a transaction rolled back after the test; code
  under test may commit (a savepoint). Factories, ``get_db()`` and ``session_scope()`` use
  that transaction too.
- ``transactional_db``: for tests that need real commits; the tables are emptied after.
- ``--create-db`` rebuilds the template. A worker database left clean (the template's
  schema and migration history, every table empty) is kept for the next run, which then
  skips the clone; anything else is dropped (``--drop-db`` drops them all).
- Importing the plugin changes nothing in the process. Two speed-ups that do are opt-in
  ini options (README, "Tests"): ``pastetrader_fast_gc`` keeps the garbage collector off
  while start-up and collection build the long-lived objects, freezes them before the
  first test and lets the process exit without collecting them;
  ``pastetrader_write_bytecode`` caches bytecode even under ``PYTHONDONTWRITEBYTECODE``.

Why a loop of its own (``project.testing.loop``, some 90 lines) rather than pytest-asyncio
(``asyncio_mode=auto``, session loop scope for fixtures and tests) or anyio's plugin
(``anyio_mode=auto``, a session-scoped ``anyio_backend``): measured on the 200-test factory
suite with ``-n 2`` (CPU of all processes, medians of 5, same machine and options),
pytest-asyncio 1.5 costs 6% more CPU (8% more per ``db_session`` test) and anyio 4.16
20% more, and neither removes the reach into pytest's internals: pytest-asyncio too swaps
``fixturedef.func`` during ``pytest_fixture_setup`` and calls
``request._get_active_fixturedef``; anyio's builds items from ``_pytest`` classes
(``CallSpec``, ``FuncFixtureInfo``) and reads ``_fixtureinfo``. Both would also need the
plugin's own session start and finish, which run before and after any fixture loop, to
keep a loop of their own. The one private reach here is ``_calling``, with a test that
fails when pytest changes it.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import inspect
import os
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from project.testing import loop

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    from project.db.url import DatabaseURL
    from project.testing.databases import WorkerDatabase

_worker_db: WorkerDatabase | None = None
FAST_GC = "pastetrader_fast_gc"
WRITE_BYTECODE = "pastetrader_write_bytecode"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pastetrader")
    group.addoption(
        "--create-db",
        action="store_true",
        help="Rebuild the migrated template database even if the migrations did not change.",
    )
    group.addoption(
        "--drop-db",
        action="store_true",
        help="Drop this run's worker databases at the end instead of keeping clean ones "
        "for the next run.",
    )
    parser.addini(
        FAST_GC,
        type="bool",
        default=False,
        help="Keep the garbage collector off during start-up and collection, freeze what "
        "they built before the first test, and exit without collecting it.",
    )
    parser.addini(
        WRITE_BYTECODE,
        type="bool",
        default=False,
        help="Write bytecode caches even where PYTHONDONTWRITEBYTECODE is set.",
    )


class _Interpreter:
    """The process-wide state the opt-in speed-ups change, and what it was before."""

    def __init__(self) -> None:
        self.fast_gc = False
        self.collector_was_enabled = True
        self.dont_write_bytecode: bool | None = None


_INTERPRETER = pytest.StashKey[_Interpreter]()


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Apply the speed-ups the configuration opts into, before conftests, SQLAlchemy, the
    models and the tests are imported."""
    state = early_config.stash[_INTERPRETER] = _Interpreter()
    if early_config.getini(WRITE_BYTECODE):
        # Warm runs, and every xdist worker, then load the project's, the libraries' and
        # pytest's rewritten test modules from their caches instead of compiling them.
        state.dont_write_bytecode = sys.dont_write_bytecode
        sys.dont_write_bytecode = False
    if early_config.getini(FAST_GC):
        from project import shutdown

        # Start-up (SQLAlchemy, the models, Faker) and collection make almost no garbage,
        # yet the collector runs over and over what they build: it waits until the tests
        # start (_resume_collector). And a test process exits without collecting it.
        state.fast_gc = True
        state.collector_was_enabled = gc.isenabled()
        gc.disable()
        shutdown.skip_final_collections()


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _describe(error: BaseException) -> str:
    from project.exceptions import describe

    return describe(error)  # every configured password already hidden


def _fail(error: BaseException) -> NoReturn:
    """Stop the run with one line that says what failed (no password) and what to do."""
    raise pytest.UsageError(
        f"test database setup failed: {_describe(error)}; "
        "start PostgreSQL or point DATABASE_URL at one"
    )


@pytest.hookimpl(wrapper=True)
def pytest_sessionstart(session: pytest.Session) -> Generator[None, None, None]:
    """Prepare this process's database; the xdist controller only checks the server.

    The controller imports no SQLAlchemy: each test process, which needs it anyway,
    makes sure the template exists and clones it, one at a time under an advisory lock.
    The controller's check runs while xdist starts the workers, and stops the run if the
    server does not answer.
    """
    config = session.config
    if not _is_worker(config):
        config.stash[_RUN_ID] = os.urandom(16).hex()
    if _is_worker(config) or not _uses_xdist(config):
        _prepare_database(config)
        return (yield)
    check = _ServerCheck()
    try:
        return (yield)  # xdist starts the workers
    finally:
        check.wait()
        _resume_collector(config)  # the controller collects no tests


class _ServerCheck(threading.Thread):
    """Connect to the server once, in the background; ``wait()`` raises if that failed."""

    def __init__(self) -> None:
        super().__init__(name="pastetrader-server-check", daemon=True)
        self.error: Exception | None = None
        from project.db.target import database_url

        try:  # in the foreground: it starts the embedded server if it is down
            self.url = database_url()
        except Exception as error:
            _fail(error)
        self.start()

    def run(self) -> None:
        import asyncio

        from project.testing import databases

        try:
            asyncio.run(databases.check_server(self.url))
        except Exception as error:
            self.error = error

    def wait(self) -> None:
        self.join()
        if self.error is not None:
            _fail(self.error)


def _prepare_database(config: pytest.Config) -> None:
    """Give this test process its clone of the template and point ``project.db`` at it."""
    global _worker_db
    from project.db.target import database_url
    from project.testing import databases

    try:
        url = database_url()
        run_id = (
            getattr(config, "workerinput")["run_id"]  # noqa: B009
            if _is_worker(config)
            else config.stash[_RUN_ID]
        )
        _worker_db = loop.run(
            databases.clone(
                url,
                None,
                os.environ.get("PYTEST_XDIST_WORKER"),
                rebuild=config.getoption("create_db"),
                run_id=run_id,
            )
        )
        from project import db

        db.set_database_url(_worker_db.url)
    except Exception as error:
        _fail(error)


_RUN_ID = pytest.StashKey[str]()


def _uses_xdist(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None))


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """Hand the run's id to each xdist worker (``--create-db`` rebuilds once per run)."""
    node.workerinput["run_id"] = node.config.stash[_RUN_ID]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Dispose the engine, drop this process's clone, and close the loop."""
    global _worker_db
    if _worker_db is None:  # the xdist controller: it never touched SQLAlchemy
        loop.close()
        return
    from project import db

    try:
        loop.run(db.dispose())
        loop.run(_worker_db.release(keep=not session.config.getoption("drop_db")))
    except Exception as error:  # the run's outcome stands; say what was left behind
        warnings.warn(
            f"could not release test database {_worker_db.url.database}: {_describe(error)}",
            stacklevel=1,
        )
    finally:
        _worker_db = None
        db.set_database_url(None)
        loop.close()


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Collect garbage again from here on, but never what start-up and collection built."""
    _resume_collector(session.config)


def _resume_collector(config: pytest.Config) -> None:
    """Under ``pastetrader_fast_gc``: freeze what exists (out of the collector's reach for
    good), then re-enable the collector.

    pytest collects all garbage twice as a session ends (to report unraisable
    exceptions), and Python collects fully now and then during the run. With SQLAlchemy,
    the models, Faker and the collected tests alive, each full collection rescans them all.
    Those objects live until the run ends anyway; the garbage the tests make is still
    collected and reported.
    """
    state = config.stash.get(_INTERPRETER, None)
    if state is None or not state.fast_gc or gc.isenabled():
        return
    gc.freeze()
    if state.collector_was_enabled:
        gc.enable()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Give back what the speed-ups changed (the collector, if the run ended before its
    tests started; the bytecode flag)."""
    state = config.stash.get(_INTERPRETER, None)
    if state is None:
        return
    if state.fast_gc and state.collector_was_enabled:
        gc.enable()
    if state.dont_write_bytecode is not None:
        sys.dont_write_bytecode = state.dont_write_bytecode


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Refuse to run a test when an earlier one left project.db pointed elsewhere: its
    writes would go to that database, not to this process's test database."""
    db = sys.modules.get("project.db.session")
    if _worker_db is not None and db is not None and db.database_url() != _worker_db.url:
        pytest.fail(
            f"project.db points at {db.database_url()} instead of the test database "
            f"{_worker_db.url.database}: a previous test changed it and did not restore it",
            pytrace=False,
        )


_CONTEXT = pytest.StashKey[contextvars.Context]()


def _test_context(item: pytest.Item) -> contextvars.Context:
    """Return the context of ``item``'s function-scoped fixtures and call: a copy of the
    session's, taken when the first of them runs, so that it holds what the wider-scoped
    fixtures set up before them."""
    context = item.stash.get(_CONTEXT, None)
    if context is None:
        context = item.stash[_CONTEXT] = loop.session_context().copy()
    return context


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    """Forget the test's context once its fixtures are torn down."""
    try:
        return (yield)
    finally:
        if _CONTEXT in item.stash:
            del item.stash[_CONTEXT]


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """Run an ``async def`` test on the session's loop, in its context.

    pytest's own implementation still calls the test, with the arguments it chooses; it
    is handed a synchronous wrapper (``Function.obj`` is settable) for the call's length.
    """
    test = pyfuncitem.obj
    if not loop.is_async(test):
        return (yield)
    pyfuncitem.obj = loop.synchronize(test, lambda: _test_context(pyfuncitem))
    try:
        return (yield)
    finally:
        pyfuncitem.obj = test


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, object, object]:
    """Let pytest set up an async fixture as if it were sync, on the session's loop: a
    function-scoped one in its test's context, a wider-scoped one in the session's."""
    function = fixturedef.func
    if not loop.is_async(function):
        return (yield)
    instance = request.instance
    if (  # a test class's own fixture runs on the test's instance, as pytest binds it
        instance is not None
        and inspect.ismethod(function)
        and isinstance(instance, type(function.__self__))
    ):
        function = function.__func__.__get__(instance)
    if fixturedef.scope == "function":
        item = request.node
        context: Callable[[], contextvars.Context] = lambda: _test_context(item)  # noqa: E731
    else:
        context = loop.session_context
    with _calling(fixturedef, loop.synchronize(function, context)):
        return (yield)


@contextlib.contextmanager
def _calling(fixturedef: pytest.FixtureDef[Any], function: Callable[..., Any]) -> Iterator[None]:
    """Make pytest's own ``pytest_fixture_setup`` call ``function`` for ``fixturedef``.

    The one place the plugin reaches past pytest's public API. pytest has no public way
    to run a fixture function of another kind: its setup calls ``fixturedef.func``
    (declared Final) and fails on an async one. pytest-asyncio and anyio's plugin swap
    that attribute for the hook's length too. ``tests/project/testing/test_plugin.py``
    fails if pytest stops calling it or this stops putting it back.
    """
    original = fixturedef.func
    fixturedef.func = function  # type: ignore[misc]
    try:
        yield
    finally:
        fixturedef.func = original  # type: ignore[misc]


@pytest.fixture(scope="session")
def db_url() -> DatabaseURL:
    """Return this test process's database URL."""
    if _worker_db is None:
        pytest.fail("no test database: the plugin's session start did not run")
    return _worker_db.url


@pytest.fixture(scope="session")
async def db_engine(db_url: DatabaseURL) -> AsyncIterator[AsyncEngine]:
    """Return the engine on this process's test database."""
    from project import db

    yield db.get_engine()
    await db.dispose()


@pytest.fixture
async def db_session(db_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """Yield a session in a transaction that is rolled back after the test."""
    from project import db

    async with db_engine.connect() as connection:
        transaction = await connection.begin()
        with db.bind_to(connection):
            session = db.async_session()  # joins the connection, commits are savepoints
            try:
                with db.use_session(session):
                    yield session
            finally:
                # Outer rollback first: the session then closes without a round trip of
                # its own to roll back its savepoint.
                await transaction.rollback()
                await session.close()


@pytest.fixture
async def transactional_db(db_url: DatabaseURL) -> AsyncIterator[AsyncEngine]:
    """Yield the engine for tests that need real commits; empty the tables afterwards."""
    from project import db
    from project.testing import databases

    try:
        yield db.get_engine()
    finally:
        await db.dispose()
        await databases.truncate_all(db_url)


@pytest.fixture
def scratch_db(db_url: DatabaseURL) -> Generator[DatabaseURL, None, None]:
    """Point ``project.db`` and the commands at a new, empty database for this test."""
    from project import db
    from project.db import admin as dbadmin
    from project.testing import databases

    url = db_url.with_database(f"{db_url.database}_scratch"[:63])
    loop.run(databases.drop(url))
    loop.run(dbadmin.create_database(url))
    loop.run(db.use_database(url))
    try:
        yield url
    finally:
        loop.run(db.use_database(db_url))
        loop.run(databases.drop(url))
