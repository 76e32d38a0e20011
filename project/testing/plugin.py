"""The project's pytest plugin: async tests, per-worker databases, isolation fixtures.

- ``async def`` tests and fixtures run with no marker, on one loop per process.
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
- The garbage collector is off while the plugin loads and the tests are collected; what
  exists then is frozen before the first test, so collections never rescan it.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import warnings
from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from project.management import shutdown
from project.testing import loop

# Cache compiled modules and pytest's rewritten test modules even where the environment
# sets PYTHONDONTWRITEBYTECODE: otherwise every run, and every xdist worker, compiles the
# whole suite again. The caches go to the git-ignored __pycache__ folders.
sys.dont_write_bytecode = False
# A test process exits without collecting its heap first (see project.management.shutdown).
shutdown.skip_final_collections()
# Start-up (SQLAlchemy, the models, Faker) and collection make almost no garbage, yet the
# collector ran some 150 times over what they build, 40 ms of a worker's CPU here: it
# waits until the tests start (_resume_collector).
_collector_was_enabled = gc.isenabled()
gc.disable()

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

    from project.db.url import DatabaseURL
    from project.testing.databases import WorkerDatabase

_worker_db: WorkerDatabase | None = None


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


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Import the packages of blocked plugins (``-p no:faker``) without assertion rewriting.

    pytest marks every installed package that ships a plugin for rewriting, blocked or
    not, and loads marked modules through its own bytecode cache, whose reader is slow
    for large modules: Faker's (imported by every factory) cost each test process about
    100 ms more that way. Nothing of a blocked plugin runs, so nothing there needs
    rewriting. Only pytest's set of marked names is touched, and only if it is there.
    """
    manager = early_config.pluginmanager
    marked = getattr(manager.rewrite_hook, "_must_rewrite", None)
    if isinstance(marked, set):
        marked.difference_update({name for name in marked if manager.is_blocked(name)})


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _describe(error: BaseException) -> str:
    from project.management import describe, scrub

    return scrub(describe(error))


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
        _resume_collector()  # the controller collects no tests


class _ServerCheck(threading.Thread):
    """Connect to the server once, in the background; ``wait()`` raises if that failed."""

    def __init__(self) -> None:
        super().__init__(name="pastetrader-server-check", daemon=True)
        self.error: Exception | None = None
        from project.testing import databases

        try:  # in the foreground: it starts the embedded server if it is down
            self.url = databases.server_url()
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
    from project.testing import databases

    try:
        url = databases.server_url()
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
    _resume_collector()


def _resume_collector() -> None:
    """Freeze what exists (out of the collector's reach for good), then re-enable it.

    pytest collects all garbage twice as a session ends (to report unraisable
    exceptions), and Python collects fully now and then during the run. With SQLAlchemy,
    the models, Faker and the collected tests alive, each full collection cost a test
    process about 50 ms here. Those objects live until the run ends anyway; the garbage
    the tests make is still collected and reported.
    """
    gc.freeze()
    if _collector_was_enabled:
        gc.enable()


def pytest_unconfigure(config: pytest.Config) -> None:
    """Re-enable the collector if the run ended before its tests started."""
    if _collector_was_enabled:
        gc.enable()


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


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Run ``async def`` tests on the session's loop."""
    if not loop.is_async(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}
    loop.run(pyfuncitem.obj(**kwargs))
    return True


@pytest.hookimpl(tryfirst=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> None:
    """Let pytest call async fixtures as if they were sync, on the session's loop."""
    if loop.is_async(fixturedef.func):
        fixturedef.func = loop.synchronize(fixturedef.func)  # type: ignore[misc]


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
    from sqlalchemy.ext.asyncio import AsyncSession

    from project import db

    async with db_engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        try:
            with db.bind_to(connection), db.use_session(session):
                yield session
        finally:
            # Outer rollback first: the session then closes without a round trip of its
            # own to roll back its savepoint.
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
