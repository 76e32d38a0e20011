"""The pytest plugin's behaviour, through real inner pytest runs (pytester) and real servers."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from project.conf import BASE_DIR
from project.db.url import DatabaseURL
from project.testing import databases

pytest_plugins = ["pytester"]

INNER_SESSION_TESTS = """
import os
from pathlib import Path

import pytest
from sqlalchemy import text

@pytest.fixture(scope="session")
async def answer():
    yield 42

async def test_one(db_session, answer, db_url):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (Path(__file__).parent / f"db_{worker}.txt").write_text(db_url.database)
    assert answer == 42
    await db_session.execute(text("CREATE TABLE leak (x int)"))
    await db_session.execute(text("INSERT INTO leak VALUES (1)"))
    await db_session.commit()  # a savepoint release, not a real commit

async def test_two(db_session, answer):
    assert answer == 42
    await db_session.execute(text("CREATE TABLE leak (x int)"))
    assert await db_session.scalar(text("SELECT count(*) FROM leak")) == 0

def test_sync():
    assert True
"""


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(BASE_DIR) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _inner(
    pytester: pytest.Pytester, *args: str, tests: str = INNER_SESSION_TESTS
) -> pytest.RunResult:
    pytester.makepyfile(test_inner=tests)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in _env().items():
            patch.setenv(key, value)
        # As the project's addopts: pytest-alembic's plugin would load Alembic itself.
        return pytester.runpytest_subprocess(
            "-p", "project.testing.plugin", "-p", "no:pytest_alembic", "-s", *args
        )


def test_isolated_writes_and_session_async_fixtures(pytester: pytest.Pytester) -> None:
    result = _inner(pytester)
    result.assert_outcomes(passed=3)
    assert "built template" not in result.stdout.str()  # this run reused the template


def test_worker_databases_are_named_per_worker(
    pytester: pytest.Pytester, db_url: DatabaseURL
) -> None:
    result = _inner(pytester, "-n", "2")
    result.assert_outcomes(passed=3)
    names = {path.read_text() for path in pytester.path.glob("db_*.txt")}
    base = databases.base_name(db_url.with_database(_server_database(db_url)))
    assert names, result.stdout.str()
    assert all(re.fullmatch(rf"{base}_gw[01](_r\d+)?", name) for name in names), names


def _server_database(db_url: DatabaseURL) -> str:
    # The outer run's clone is test_<db>[_gwN]; recover <db> from the settings instead.
    from project import db
    from project.conf import get_settings

    settings_url = get_settings().database_url
    if settings_url is not None:
        return settings_url.database
    from project.db import embedded

    assert db is not None
    return embedded.DEFAULT_DATABASE


def test_two_concurrent_runs_both_pass(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_inner=INNER_SESSION_TESTS)
    command = [sys.executable, "-m", "pytest", "-p", "project.testing.plugin", "-q", "-n", "2"]
    runs = [
        subprocess.Popen(command, cwd=pytester.path, env=_env(), stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=180)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert all("3 passed" in out for out in outputs), outputs


@pytest.mark.parametrize("xdist", [(), ("-n", "2")], ids=["single", "xdist"])
def test_unreachable_server_stops_the_run_with_one_line(
    pytester: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    pytester.makepyfile(test_inner="def test_x():\n    assert True\n")
    env = _env()
    env["DATABASE_URL"] = "postgresql://someone:Sup3rSecret@127.0.0.1:1/nothing"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "project.testing.plugin", "-q", *xdist],
        cwd=pytester.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = run.stdout + run.stderr
    assert run.returncode != 0
    assert "Sup3rSecret" not in output
    lines = [line for line in output.splitlines() if "test database setup failed" in line]
    assert len(lines) == 1, output
    assert "127.0.0.1:1" in lines[0]
    assert "Traceback" not in output


async def test_refuses_to_drop_or_truncate_non_test_databases(db_url: DatabaseURL) -> None:
    for name in ("postgres", "pastetrader", "production_test"):
        with pytest.raises(databases.UnsafeDatabase, match="refusing"):
            await databases.drop(db_url.with_database(name))
        with pytest.raises(databases.UnsafeDatabase):
            await databases.truncate_all(db_url.with_database(name))


async def test_template_reused_then_rebuilt_when_fingerprint_changes(
    db_url: DatabaseURL, monkeypatch: pytest.MonkeyPatch
) -> None:
    from project.db import admin as dbadmin

    server = db_url.with_database(f"plugincheck{os.getpid()}")
    monkeypatch.setattr(databases, "fingerprint", lambda: "aaaaaaaaaaaa")
    first, built = await databases.ensure_template(server, rebuild=True)
    assert built
    again, built_again = await databases.ensure_template(server)
    assert (again, built_again) == (first, False)
    monkeypatch.setattr(databases, "fingerprint", lambda: "bbbbbbbbbbbb")
    second, rebuilt = await databases.ensure_template(server)
    assert rebuilt
    assert second != first
    assert not await dbadmin.database_exists(server.with_database(first))  # old one dropped
    clone = await databases.clone(server, second, "gw9")
    try:
        conn = await dbadmin.connect(clone.url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM alembic_version") == 1
        finally:
            await conn.close()
    finally:
        await clone.release(keep=False)
        await dbadmin.drop_database(server.with_database(second))


def test_fingerprint_follows_migration_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    copy = tmp_path / "project_root"
    shutil.copytree(BASE_DIR / "migrations", copy / "migrations")
    monkeypatch.setattr(databases, "BASE_DIR", copy)
    before = databases.fingerprint()
    assert databases.fingerprint() == before
    (copy / "migrations" / "versions" / "extra.py").write_text("# a new revision\n")
    assert databases.fingerprint() != before


async def test_a_crashed_runs_leftover_clone_is_replaced_not_trusted(
    db_url: DatabaseURL, monkeypatch: pytest.MonkeyPatch
) -> None:
    from project.db import admin as dbadmin

    server = db_url.with_database(f"plugincheck{os.getpid()}")
    monkeypatch.setattr(databases, "fingerprint", lambda: "cccccccccccc")
    template = databases.template_name(server, "c" * 12)
    leftover = server.with_database(databases.base_name(server) + "_gw5")
    try:
        await databases.ensure_template(server, rebuild=True)
        await dbadmin.create_database(leftover)  # as a crashed run would leave it
        await _execute(leftover, "CREATE TABLE stale_schema (x int)")
        clone = await databases.clone(server, template, "gw5")
        assert clone.url.database == leftover.database  # its name is free: nobody holds it
        conn = await dbadmin.connect(clone.url)
        try:
            tables = {r[0] for r in await conn.fetch("SELECT tablename FROM pg_tables")}
        finally:
            await conn.close()
        assert "stale_schema" not in tables
        assert "alembic_version" in tables
        await clone.release(keep=False)
    finally:
        await dbadmin.drop_database(leftover)
        await dbadmin.drop_database(server.with_database(template))


CHANGES = {
    "a row left behind": "INSERT INTO tools (name, tool_type) VALUES ('left', 'notification')",
    "a table left behind": "CREATE TABLE left_behind (x int)",
    "a column added": "ALTER TABLE tools ADD COLUMN extra int",
    "an index dropped": "DROP INDEX uq_tools_name_live",
    "a view added": "CREATE VIEW live_tools AS SELECT * FROM tools",
    "another schema": "CREATE SCHEMA scratch; CREATE TABLE scratch.t (x int)",
    "a version changed": "UPDATE alembic_version SET version_num = 'elsewhere'",
}


@pytest.mark.parametrize("change", list(CHANGES))
async def test_clean_clones_are_reused_changed_ones_never(
    change: str, db_url: DatabaseURL, monkeypatch: pytest.MonkeyPatch
) -> None:
    from project.db import admin as dbadmin

    server = db_url.with_database(f"plugincheck{os.getpid()}")
    monkeypatch.setattr(databases, "fingerprint", lambda: "dddddddddddd")
    try:
        template, _ = await databases.ensure_template(server)
        first = await databases.clone(server, template, "gw6")
        assert await first.release()  # untouched: kept, marked clean
        second = await databases.clone(server, template, "gw6")
        assert second.reused
        await _execute(second.url, CHANGES[change])  # during the run
        assert not await second.release()  # changed: dropped, not kept
        assert not await dbadmin.database_exists(second.url)

        third = await databases.clone(server, template, "gw6")
        assert not third.reused
        assert await third.release()
        await _execute(third.url, CHANGES[change])  # between runs, after it was kept
        fourth = await databases.clone(server, template, "gw6")
        assert not fourth.reused  # checked again before reuse: replaced
        conn = await dbadmin.connect(fourth.url)
        try:
            assert await conn.fetchval("SELECT count(*) FROM tools") == 0
        finally:
            await conn.close()
        assert not await fourth.release(keep=False)
    finally:
        await dbadmin.drop_database(server.with_database(databases.template_name(server, "d" * 12)))


async def _execute(url: DatabaseURL, sql: str) -> None:
    from project.db import admin as dbadmin

    conn = await dbadmin.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def test_test_database_names_always_carry_the_prefix_and_never_collide() -> None:
    from project.db.url import DatabaseURL as URL

    assert databases.base_name(URL("app")) == "test_app"
    assert databases.base_name(URL("test_app")) == "test_test_app"  # never the app's own
    long_a = databases.base_name(URL("x" * 50 + "_eu_west_1"))
    long_b = databases.base_name(URL("x" * 50 + "_eu_west_2"))
    assert long_a != long_b
    assert len(long_a) <= 40
    assert long_a.startswith("test_")


async def test_create_db_rebuilds_once_per_run(
    db_url: DatabaseURL, monkeypatch: pytest.MonkeyPatch
) -> None:
    from project.db import admin as dbadmin

    server = db_url.with_database(f"plugincheck{os.getpid()}")
    monkeypatch.setattr(databases, "fingerprint", lambda: "eeeeeeeeeeee")
    name = databases.template_name(server, "e" * 12)
    try:
        await databases.ensure_template(server)
        assert (await databases.ensure_template(server, rebuild=True, run_id="a"))[1]
        # The other processes of run "a" find it already rebuilt; run "b" rebuilds again.
        assert not (await databases.ensure_template(server, rebuild=True, run_id="a"))[1]
        assert (await databases.ensure_template(server, rebuild=True, run_id="b"))[1]
    finally:
        await dbadmin.drop_database(server.with_database(name))


CONTROLLER_PROBE = """
import sys

def pytest_sessionfinish(session):
    if not hasattr(session.config, "workerinput"):
        with open("controller_modules.txt", "w") as f:
            f.write(" ".join(m for m in ("sqlalchemy", "alembic") if m in sys.modules))
"""


def test_xdist_controller_imports_no_sqlalchemy(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(CONTROLLER_PROBE)
    result = _inner(pytester, "-n", "2")
    result.assert_outcomes(passed=3)
    assert (pytester.path / "controller_modules.txt").read_text() == ""


LOADER_PROBE = """
import faker


def test_loader():
    print("faker loaded by", type(faker.__loader__).__name__)
"""


@pytest.mark.parametrize(
    ("flags", "rewritten"),
    [(("--disable-plugin-autoload", "-p", "xdist"), False), ((), True)],
    ids=["autoload-disabled", "autoloaded"],
)
def test_plugin_packages_are_assertion_rewritten_only_when_autoloaded(
    pytester: pytest.Pytester, flags: tuple[str, ...], rewritten: bool
) -> None:
    # pytest marks every installed package that ships a plugin (Faker does) for rewriting,
    # unless plugin autoloading is off, as the project's addopts have it.
    result = _inner(pytester, *flags, tests=LOADER_PROBE)
    result.assert_outcomes(passed=1)
    loader = "AssertionRewritingHook" if rewritten else "SourceFileLoader"
    assert f"faker loaded by {loader}" in result.stdout.str()


def test_this_suite_imports_faker_without_rewriting() -> None:
    import faker  # the factories' import, here unrewritten: pyproject.toml's addopts

    assert type(faker.__loader__).__name__ == "SourceFileLoader"


STATE_PROBE = """
import gc
import sys
from pathlib import Path

COLLECTING = gc.isenabled()


def test_state():
    shutdown = sys.modules.get("project.shutdown")
    report = (
        f"{gc.get_freeze_count()} {COLLECTING} {gc.isenabled()} {sys.dont_write_bytecode} "
        f"{bool(shutdown and shutdown._registered)}"
    )
    (Path(__file__).parent / "state.txt").write_text(report)
"""


def _state(pytester: pytest.Pytester, *args: str) -> tuple[int, str, str, str, str]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONDONTWRITEBYTECODE", "1")
        _inner(pytester, *args, tests=STATE_PROBE).assert_outcomes(passed=1)
    frozen, *flags = (pytester.path / "state.txt").read_text().split()
    collecting, testing, no_bytecode, quick_exit = flags
    return int(frozen), collecting, testing, no_bytecode, quick_exit


@pytest.mark.parametrize("xdist", [(), ("-n", "1")], ids=["single", "xdist"])
def test_the_plugin_leaves_the_interpreter_alone_unless_asked(
    pytester: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    assert _state(pytester, *xdist) == (0, "True", "True", "True", "False")


@pytest.mark.parametrize("xdist", [(), ("-n", "1")], ids=["single", "xdist"])
def test_fast_gc_skips_start_up_and_runs_for_the_tests(
    pytester: pytest.Pytester, xdist: tuple[str, ...]
) -> None:
    frozen, *flags = _state(pytester, "-o", "pastetrader_fast_gc=true", *xdist)
    # pytest, SQLAlchemy and the collected test: far more than anything a test makes
    assert frozen > 10_000
    assert flags == ["False", "True", "True", "True"]


def test_write_bytecode_caches_under_pythondontwritebytecode(pytester: pytest.Pytester) -> None:
    frozen, *flags = _state(pytester, "-o", "pastetrader_write_bytecode=true")
    assert (frozen, flags) == (0, ["True", "True", "False", "False"])
    assert list(pytester.path.glob("__pycache__/test_inner*.pyc"))  # pytest's rewritten test


CONTEXT_TESTS = """
import contextvars

import pytest

var = contextvars.ContextVar("var", default="unset")
seen = []


@pytest.fixture(scope="session")
async def session_wide():
    token = var.set("session")
    yield
    var.reset(token)


@pytest.fixture
async def bound(session_wide):
    assert var.get() == "session"
    token = var.set("fixture")
    yield
    seen.append(var.get())  # the teardown shares the test's context
    var.reset(token)


@pytest.fixture
async def unreset():
    var.set("left set")


async def test_a_test_sees_what_its_fixtures_set(bound):
    assert var.get() == "fixture"
    var.set("test")


async def test_a_fixture_that_never_resets_ends_with_its_test(session_wide, unreset):
    assert var.get() == "left set"


async def test_the_next_test_starts_from_the_session_context(session_wide):
    assert var.get() == "session"
    assert seen == ["test"]


def test_sync_tests_run_outside():
    assert var.get() == "unset"


class TestAClass:
    @pytest.fixture
    async def mine(self):
        self.seen = True
        return 7

    async def test_its_fixture_runs_on_the_tests_instance(self, mine):
        assert mine == 7
        assert self.seen
"""


def test_async_fixtures_and_their_test_share_one_context(pytester: pytest.Pytester) -> None:
    _inner(pytester, tests=CONTEXT_TESTS).assert_outcomes(passed=5)


ADAPTER_CONFTEST = """
import pytest

from project.testing import plugin


def replacement():
    return "replaced"


@pytest.fixture
def swapped():
    return "original"


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    if fixturedef.argname != "swapped":
        return (yield)
    original = fixturedef.func
    with plugin._calling(fixturedef, replacement):
        value = yield
    assert fixturedef.func is original, "plugin._calling did not put fixturedef.func back"
    return value
"""
ADAPTER_TEST = """
def test_swapped(swapped):
    assert swapped == "replaced", (
        "pytest's fixture setup no longer calls fixturedef.func: "
        "project.testing.plugin._calling needs another way to run async fixtures"
    )
"""


def test_pytest_still_calls_the_function_the_fixture_adapter_puts_in_place(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(ADAPTER_CONFTEST)
    _inner(pytester, tests=ADAPTER_TEST).assert_outcomes(passed=1)
