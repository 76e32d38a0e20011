"""The application behind a real PgBouncer in transaction pooling mode.

Each test starts ``pgbouncer`` (the Debian package, 1.18: no ``max_prepared_statements``)
on a free port in front of the test database's server, with a pool of two server
connections so that many client connections share them. ``DB_PGBOUNCER=true`` must make
many short concurrent transactions work; without it the same load must break on prepared
statements; migrations must take their advisory lock on ``DATABASE_DIRECT_URL``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Column, Integer, MetaData, String, Table, exc, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import NullPool

from project import conf, db
from project.conf import Settings, settings_from
from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.exceptions import ImproperlyConfigured
from project.migrate import config as migrate_config
from project.migrate.lock import LOCK_KEY
from project.testing.standby import free_port
from project.testing.tools import system_tool
from tests.support import run_manage

SessionDep = db.SessionDep
ROOT = Path(__file__).resolve().parents[3]
POOL_SIZE = 2  # PgBouncer's server connections per database and user
TASKS = 20
TRANSACTIONS = 200
# asyncpg's errors for a prepared statement that is missing on, or already exists on, the
# server connection PgBouncer picked: InvalidSQLStatementNameError, DuplicatePreparedStatementError.
PREPARED_STATEMENT_SQLSTATES = {"26000", "42P05"}
INSTALL_HINT = "install it with 'apt-get install -y pgbouncer' (.ci/run does)"
SETTING_VARIABLES = conf.VARIABLES

metadata = MetaData()
probe = Table(
    "pgbouncer_probe",
    metadata,
    Column("task", Integer, primary_key=True),
    Column("seq", Integer, primary_key=True),
    Column("value", String(40), nullable=False),
)


def pgbouncer_binary() -> str:
    """Return the pgbouncer executable; without one the test skips (fails in CI)."""
    return system_tool("pgbouncer", install=INSTALL_HINT)


def server_address(url: DatabaseURL) -> tuple[str, int]:
    """Return the server's host (or Unix socket directory) and port."""
    query = url.query_dict
    host = query.get("host") or url.host or "127.0.0.1"
    port = int(query["port"]) if "port" in query else (url.port or 5432)
    return host, port


def run_as(host: str) -> str | None:
    """Return the user pgbouncer runs as: None unless root (pgbouncer refuses root). A Unix
    socket's directory may be private to its owner (the embedded server's ``pgserver``)."""
    if os.geteuid() != 0:
        return None
    if host.startswith("/"):
        return pwd.getpwuid(os.stat(host).st_uid).pw_name
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    pytest.fail("no user to run pgbouncer as (it refuses to run as root)", pytrace=False)


def quote_ini(value: str) -> str:
    return "'" + value.replace("'", "''") + "'" if any(c in value for c in " '") else value


@dataclass
class PgBouncer:
    """A running pgbouncer in front of ``server``'s PostgreSQL."""

    server: DatabaseURL
    port: int
    directory: Path
    process: subprocess.Popen[bytes]

    def url(self, database: str) -> DatabaseURL:
        """Return the URL of ``database`` through pgbouncer."""
        return DatabaseURL(
            database=database,
            host="127.0.0.1",
            port=self.port,
            username=self.server.username,
            password=self.server.password,
        )

    def log(self) -> str:
        return (self.directory / "pgbouncer.log").read_text(errors="replace")

    def logins(self, database: str) -> int:
        """Return how many client logins to ``database`` pgbouncer logged."""
        return self.log().count(f"login attempt: db={database} ")


def write_config(directory: Path, server: DatabaseURL, port: int, user: str | None) -> Path:
    host, server_port = server_address(server)
    name = server.username or "postgres"
    (directory / "users.txt").write_text(f'"{name}" "{server.password or ""}"\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        f"""\
[databases]
* = host={quote_ini(host)} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {directory / "users.txt"}
admin_users = {name}
pool_mode = transaction
default_pool_size = {POOL_SIZE}
min_pool_size = 0
reserve_pool_size = 0
max_client_conn = 500
max_db_connections = {POOL_SIZE}
ignore_startup_parameters = extra_float_digits
logfile = {directory / "pgbouncer.log"}
pidfile = {directory / "pgbouncer.pid"}
log_connections = 1
"""
    )
    if user is not None:
        entry = pwd.getpwnam(user)
        for path in (directory, *directory.iterdir()):
            os.chown(path, entry.pw_uid, entry.pw_gid)
    return config


def wait_listening(process: subprocess.Popen[bytes], port: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)  # immediate shutdown, server connections closed
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def pgbouncer(db_url: DatabaseURL) -> Iterator[PgBouncer]:
    """Run pgbouncer in transaction pooling mode in front of the test database's server."""
    binary = pgbouncer_binary()
    user = run_as(server_address(db_url)[0])
    directory = Path(tempfile.mkdtemp(prefix="pgbouncer-"))
    try:
        for _attempt in range(3):  # the free port may be taken before pgbouncer binds it
            port = free_port()
            config = write_config(directory, db_url, port, user)
            argv = [binary, *(["-u", user] if user else []), str(config)]
            with (directory / "pgbouncer.out").open("ab") as out:
                process = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
                )
            if wait_listening(process, port):
                break
            stop(process)
        else:
            output = (directory / "pgbouncer.out").read_text(errors="replace")
            pytest.fail(f"pgbouncer did not start: {' '.join(argv)}\n{output}", pytrace=False)
        bouncer = PgBouncer(server=db_url, port=port, directory=directory, process=process)
        try:
            yield bouncer
        finally:
            stop(process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def pgbouncer_settings(url: DatabaseURL, *, enabled: bool, **extra: str) -> Settings:
    return settings_from(
        {
            "DATABASE_URL": url.render(hide_password=False),
            "DB_PGBOUNCER": "true" if enabled else "false",
            "DB_POOL_SIZE": str(TASKS),
            "DB_MAX_OVERFLOW": "0",
            **extra,
        }
    )


async def create_probe_table(url: DatabaseURL) -> None:
    engine = db.create_engine(url, settings_from({}), pooled=False)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
    finally:
        await engine.dispose()


async def one_transaction(engine: AsyncEngine, task: int, seq: int) -> None:
    """A short transaction: a parametrized select, an insert, and a select of the row."""
    async with engine.begin() as connection:
        total = await connection.scalar(select(literal(task) + literal(seq)))
        assert total == task + seq
        await connection.execute(probe.insert().values(task=task, seq=seq, value=f"{task}:{seq}"))
        value = await connection.scalar(
            select(probe.c.value).where(probe.c.task == task, probe.c.seq == seq)
        )
        assert value == f"{task}:{seq}"


async def load(*engines: AsyncEngine) -> list[BaseException | None]:
    """Run TRANSACTIONS transactions from TASKS concurrent tasks, the tasks spread over
    ``engines``; return each outcome."""

    async def worker(task: int) -> list[BaseException | None]:
        engine = engines[task % len(engines)]
        outcomes: list[BaseException | None] = []
        for seq in range(TRANSACTIONS // TASKS):
            try:
                await one_transaction(engine, task, seq)
            except exc.DBAPIError as error:
                outcomes.append(error)
            else:
                outcomes.append(None)
        return outcomes

    results = await asyncio.gather(*(worker(task) for task in range(TASKS)))
    return [outcome for outcomes in results for outcome in outcomes]


def sqlstate(error: BaseException | None) -> str | None:
    orig = getattr(error, "orig", None)
    return getattr(orig, "sqlstate", None)


def test_db_pgbouncer_setting() -> None:
    assert settings_from({}).pgbouncer is False
    assert settings_from({"DB_PGBOUNCER": "true"}).pgbouncer is True
    assert settings_from({"DB_PGBOUNCER": "off"}).pgbouncer is False
    with pytest.raises(ImproperlyConfigured) as caught:
        settings_from({"DB_PGBOUNCER": "sometimes"})
    assert str(caught.value) == "DB_PGBOUNCER must be true or false, got 'sometimes'"


async def test_engine_options_for_pgbouncer(db_url: DatabaseURL) -> None:
    """With DB_PGBOUNCER no statement is cached and every statement gets a unique name."""
    engine = db.create_engine(db_url, settings_from({"DB_PGBOUNCER": "true"}))
    try:
        async with engine.connect() as connection:
            raw = await connection.get_raw_connection()
            adapter, driver = raw.dbapi_connection, raw.driver_connection
            assert adapter is not None
            assert driver is not None
            assert getattr(adapter, "_prepared_statement_cache", 0) is None  # SQLAlchemy's
            assert driver._stmt_cache.get_max_size() == 0  # asyncpg's
            # asyncpg closes each unused statement before it prepares the next one, so the
            # server holds one statement: the one listing them.
            listed = [
                (await connection.scalars(text("SELECT name FROM pg_prepared_statements"))).one()
                for _ in range(2)
            ]
    finally:
        await engine.dispose()
    assert listed[0] != listed[1]  # the same statement twice: prepared twice, two names
    assert all(re.fullmatch(r"__asyncpg_[0-9a-f-]{36}__", name) for name in listed)


async def test_migration_engine_uses_the_direct_url(db_url: DatabaseURL) -> None:
    pooled = DatabaseURL(database="app", host="bouncer.invalid", port=6432, username="app")
    direct = DatabaseURL(database="app", host="db.invalid", port=5432, username="app")
    settings = pgbouncer_settings(
        pooled, enabled=True, DATABASE_DIRECT_URL=direct.render(hide_password=False)
    )
    saved = conf.get_settings()
    await db.use_database(None)  # the test plugin's database would win over the settings
    conf.override_settings(settings)
    try:
        engine = migrate_config.create_migration_engine()
        assert engine.url == direct.to_sqlalchemy()
        assert isinstance(engine.sync_engine.pool, NullPool)
        assert db.get_engine().url == pooled.to_sqlalchemy()
        conf.override_settings(
            pgbouncer_settings(pooled, enabled=True)  # without a direct URL: DATABASE_URL
        )
        assert migrate_config.create_migration_engine().url == pooled.to_sqlalchemy()
    finally:
        conf.override_settings(saved)
        await db.use_database(db_url)


async def test_concurrent_transactions_through_pgbouncer(
    pgbouncer: PgBouncer, scratch_db: DatabaseURL
) -> None:
    await create_probe_table(scratch_db)
    url = pgbouncer.url(scratch_db.database)
    engine = db.create_engine(url, pgbouncer_settings(url, enabled=True))
    try:
        outcomes = await load(engine)
        errors = [error for error in outcomes if error is not None]
        assert not errors, f"{len(errors)} of {len(outcomes)} failed, first: {errors[0]!r}"
        async with engine.connect() as connection:
            rows = (await connection.execute(select(probe.c.task, probe.c.seq))).all()
    finally:
        await engine.dispose()
    assert len(outcomes) == TRANSACTIONS
    assert sorted(rows) == [(t, s) for t in range(TASKS) for s in range(TRANSACTIONS // TASKS)]
    assert pgbouncer.logins(scratch_db.database) >= TASKS  # the load really went through it


async def test_without_the_setting_prepared_statements_break(
    pgbouncer: PgBouncer, scratch_db: DatabaseURL
) -> None:
    await create_probe_table(scratch_db)
    url = pgbouncer.url(scratch_db.database)
    engine = db.create_engine(url, pgbouncer_settings(url, enabled=False))
    try:
        # The failure made certain: a statement prepared on the only server connection,
        # that connection then held by another client, the statement run again elsewhere.
        async with engine.connect() as first:
            await first.execute(text("SELECT CAST(:x AS int)"), {"x": 1})
            await first.commit()  # the server connection goes back to PgBouncer's pool
            async with engine.connect() as second:
                await second.execute(text("SELECT 1"))  # holds that server connection
                with pytest.raises(exc.DBAPIError) as moved:
                    await first.execute(text("SELECT CAST(:x AS int)"), {"x": 2})
                await first.rollback()
        assert sqlstate(moved.value) in PREPARED_STATEMENT_SQLSTATES, moved.value
        # The same load that passes with DB_PGBOUNCER fails only in this way, if at all.
        outcomes = await load(engine)
    finally:
        await engine.dispose()
    errors = [error for error in outcomes if error is not None]
    assert {sqlstate(error) for error in errors} <= PREPARED_STATEMENT_SQLSTATES, errors[0]


def per_process_names() -> Callable[[], str]:
    """Return asyncpg's default naming as a process sees it: a counter from 1 of its own."""
    counter = itertools.count(1)
    return lambda: f"__asyncpg_stmt_{next(counter):x}__"


@pytest.mark.parametrize("unique_names", [True, False], ids=["unique-names", "per-process"])
async def test_two_processes_through_pgbouncer(
    pgbouncer: PgBouncer, scratch_db: DatabaseURL, unique_names: bool
) -> None:
    """Two application processes (two engines with asyncpg's per-process statement names)
    share PgBouncer's server connections: their names collide unless they are unique."""
    await create_probe_table(scratch_db)
    url = pgbouncer.url(scratch_db.database)
    settings = pgbouncer_settings(url, enabled=True)

    def connect_args() -> dict[str, Callable[[], str]]:  # a counter per engine
        return {} if unique_names else {"prepared_statement_name_func": per_process_names()}

    engines = [db.create_engine(url, settings, connect_args=connect_args()) for _ in range(2)]
    try:
        if not unique_names:
            # The collision made certain: the first process prepares its statements on the
            # only server connection; the second one's first names are the same ones.
            async with engines[0].connect() as first:
                await first.execute(text("SELECT CAST(:x AS int)"), {"x": 1})
                await first.commit()
            with pytest.raises(exc.DBAPIError) as collided:
                async with engines[1].connect() as second:
                    await second.execute(text("SELECT CAST(:x AS int)"), {"x": 1})
            assert sqlstate(collided.value) == "42P05", collided.value  # already exists
        outcomes = await load(*engines)
    finally:
        for engine in engines:
            await engine.dispose()
    errors = [error for error in outcomes if error is not None]
    if unique_names:
        assert not errors, f"{len(errors)} of {len(outcomes)} failed, first: {errors[0]!r}"
    else:  # under load they fail only in these ways, if at all
        assert {sqlstate(error) for error in errors} <= PREPARED_STATEMENT_SQLSTATES, errors[0]


def manage_environment(**settings: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    environ.update(settings, ENVIRONMENT="test")
    return environ


async def migrate(environ: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_manage, "migrate", env=environ, timeout=120)


async def advisory_lock_holders(url: DatabaseURL) -> int:
    """Return how many server sessions hold the migration lock in ``url``'s database."""
    connection = await dbadmin.connect(url)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 "
            "AND l.objid = $1::bigint::oid AND d.datname = $2",
            LOCK_KEY,
            url.database,
        )
        return count
    finally:
        await connection.close()


async def applied_revision(url: DatabaseURL) -> str | None:
    engine = db.create_engine(url, pgbouncer_settings(url, enabled=True), pooled=False)
    try:
        async with engine.connect() as connection:
            revision: str | None = await connection.scalar(
                text("SELECT version_num FROM alembic_version")
            )
            return revision
    finally:
        await engine.dispose()


async def test_migrate_takes_its_lock_on_the_direct_url(
    pgbouncer: PgBouncer, scratch_db: DatabaseURL
) -> None:
    pooled = pgbouncer.url(scratch_db.database)
    result = await migrate(
        manage_environment(
            DATABASE_URL=pooled.render(hide_password=False),
            DATABASE_DIRECT_URL=scratch_db.render(hide_password=False),
            DB_PGBOUNCER="true",
            MIGRATE_LOCK_TIMEOUT="30",
        )
    )
    assert result.returncode == 0, result.stderr
    assert pgbouncer.logins(scratch_db.database) == 0  # not one connection through pgbouncer
    assert await advisory_lock_holders(scratch_db) == 0
    head = migrate_config.script_directory().get_current_head()
    assert await applied_revision(pooled) == head  # the application's URL sees the schema
    assert pgbouncer.logins(scratch_db.database) == 1


async def test_migrate_through_pgbouncer_leaks_its_session_lock(
    pgbouncer: PgBouncer, scratch_db: DatabaseURL
) -> None:
    """Why DATABASE_DIRECT_URL exists: a session-level advisory lock taken through
    transaction pooling stays on a pooled server connection after migrate exits, so the
    next migrate that lands on another server connection waits for it."""
    pooled = pgbouncer.url(scratch_db.database)
    result = await migrate(
        manage_environment(
            DATABASE_URL=pooled.render(hide_password=False),
            DB_PGBOUNCER="true",
            MIGRATE_LOCK_TIMEOUT="30",
        )
    )
    assert result.returncode == 0, result.stderr
    assert pgbouncer.logins(scratch_db.database) >= 1
    assert await advisory_lock_holders(scratch_db) == 1


@pytest.fixture
async def app_on_pgbouncer(
    pgbouncer: PgBouncer, scratch_db: DatabaseURL
) -> AsyncIterator[DatabaseURL]:
    """Point the settings and ``project.db`` at the scratch database through pgbouncer."""
    await create_probe_table(scratch_db)
    url = pgbouncer.url(scratch_db.database)
    saved = conf.get_settings()
    conf.override_settings(pgbouncer_settings(url, enabled=True))
    await db.use_database(url)
    try:
        yield url
    finally:
        conf.override_settings(saved)
        await db.use_database(scratch_db)


async def count_rows(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(probe)) or 0)


async def test_session_scope_through_pgbouncer(
    app_on_pgbouncer: DatabaseURL, pgbouncer: PgBouncer
) -> None:
    async def write(task: int) -> None:
        for seq in range(TRANSACTIONS // TASKS):
            async with db.session_scope() as session:
                await session.execute(probe.insert().values(task=task, seq=seq, value="s"))
                assert (await session.scalar(select(literal(task)))) == task

    await asyncio.gather(*(write(task) for task in range(TASKS)))

    async def fail() -> None:
        async with db.session_scope() as session:
            await session.execute(probe.insert().values(task=-1, seq=0, value="rolled back"))
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError, match="roll back"):
        await fail()
    async with db.session_scope() as session:
        assert await count_rows(session) == TRANSACTIONS
    assert db.get_engine().url == app_on_pgbouncer.to_sqlalchemy()
    assert pgbouncer.logins(app_on_pgbouncer.database) >= 1


async def test_get_db_through_pgbouncer(app_on_pgbouncer: DatabaseURL) -> None:
    app = FastAPI()

    @app.post("/rows/{task}/{seq}")
    async def add(task: int, seq: int, session: SessionDep) -> dict[str, int]:
        await session.execute(probe.insert().values(task=task, seq=seq, value="r"))
        if task < 0:
            raise ValueError("rolled back")
        return {"rows": await count_rows(session)}

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        responses = await asyncio.gather(
            *(client.post(f"/rows/{task}/{seq}") for task in range(TASKS) for seq in range(5))
        )
        assert [r.status_code for r in responses] == [200] * (TASKS * 5)
        assert (await client.post("/rows/-1/0")).status_code == 500
    async with db.session_scope() as session:
        assert await count_rows(session) == TASKS * 5


async def test_read_only_sessions_through_pgbouncer(app_on_pgbouncer: DatabaseURL) -> None:
    """Through PgBouncer a read-only session is a BEGIN READ ONLY transaction: no server
    settings to pass on, no AUTOCOMMIT (its statements would cross server connections)."""

    async def read(task: int) -> None:
        for _ in range(TRANSACTIONS // TASKS):
            async with db.session_scope(read_only=True) as session:
                assert await session.scalar(text("SHOW transaction_read_only")) == "on"
                assert await session.scalar(select(literal(task))) == task

    await asyncio.gather(*(read(task) for task in range(TASKS)))

    async def delete_all() -> None:
        async with db.session_scope(read_only=True) as session:
            connection = await session.connection()
            await connection.exec_driver_sql("DELETE FROM pgbouncer_probe")

    with pytest.raises(exc.DBAPIError, match="read-only transaction"):
        await delete_all()
