"""Benchmark the test plugin: per-worker setup, a warm start, and a 200-test suite.

    uv run python -m bench.testing

1. Per-worker database setup (``databases.clone``) against a bare
   ``CREATE DATABASE ... TEMPLATE`` of the same template, for the real migration history
   and for a synthetic history of 50 revisions (target: within 1.2x, whatever the count).
2. A second run with unchanged migrations runs no migration: time from start to the
   first test.
3. 200 small database tests (3 rows through a factory, then a query) with ``-n 2``, under
   the project's pytest settings (``PROJECT_OPTIONS``): wall time and the CPU time of all
   its processes (which others' load on the machine disturbs less), and the plugin's
   per-test overhead against a raw asyncpg BEGIN; ROLLBACK pair. With ``--django``, the
   same suite on Django 5.2 + pytest-django (installed into a temporary venv from PyPI)
   side by side, on the same server.
4. What each speed-up buys: the suite without ``pastetrader_fast_gc``, with the plugins
   autoloaded (Faker then assertion-rewritten), and, under ``PYTHONDONTWRITEBYTECODE=1``
   with no bytecode cache to start from, with and without ``pastetrader_write_bytecode``.
"""

from __future__ import annotations

import asyncio
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bench.common import refuse_production
from project import db
from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.testing import databases

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 7
RUNS = 5
# As pyproject.toml's [tool.pytest.ini_options]: the plugins named, not autoloaded, and the
# test plugin's opt-in speed-ups.
PLUGINS = ("--disable-plugin-autoload", "-p", "xdist", "-p", "project.testing.plugin")
FAST_GC = ("-o", "pastetrader_fast_gc=true")
WRITE_BYTECODE = ("-o", "pastetrader_write_bytecode=true")
PROJECT_OPTIONS = (*PLUGINS, *FAST_GC, *WRITE_BYTECODE)

SYNTHETIC_ENV = """
from alembic import context

context.configure(connection=context.config.attributes["connection"])
with context.begin_transaction():
    context.run_migrations()
"""
SYNTHETIC_REVISION = """
from alembic import op
import sqlalchemy as sa
revision = "r{n:03d}"
down_revision = {down!r}
def upgrade():
    op.create_table(
        "synthetic_{n:03d}",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("payload", sa.Text),
    )
    op.create_index("ix_synthetic_{n:03d}_name", "synthetic_{n:03d}", ["name"])
def downgrade():
    op.drop_table("synthetic_{n:03d}")
"""

SUITE = """
from sqlalchemy import func, select

from apps.tools.factories import ToolFactory
from apps.tools.models import Tool


async def test_{n}(db_session):
    await ToolFactory.create_batch(3)
    assert await db_session.scalar(select(func.count()).select_from(Tool)) == 3
"""

OVERHEAD = """
from sqlalchemy import text


async def test_{n}(db_session):
    await db_session.execute(text("SELECT 1"))
"""

TIMING_CONFTEST = """
import os
import time

import pytest

_times = []
_first = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    if not _first:
        _first.append(time.time())
    started = time.perf_counter()
    yield
    _times.append(time.perf_counter() - started)


def pytest_sessionfinish(session):
    out = os.environ.get("BENCH_OUT")
    if out and _times:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with open(f"{out}.{worker}", "w") as f:
            f.write(f"{_first[0]} {sorted(_times)[len(_times) // 2]}\\n")
"""


def synthetic_template(url: DatabaseURL, revisions: int, workdir: Path) -> str:
    """Build a template database migrated through ``revisions`` synthetic revisions."""
    from alembic import command
    from alembic.config import Config

    scripts = workdir / f"synthetic{revisions}"
    (scripts / "versions").mkdir(parents=True)
    (scripts / "env.py").write_text(SYNTHETIC_ENV)
    (scripts / "script.py.mako").write_text("")
    for n in range(1, revisions + 1):
        down = f"r{n - 1:03d}" if n > 1 else None
        (scripts / "versions" / f"r{n:03d}.py").write_text(
            SYNTHETIC_REVISION.format(n=n, down=down)
        )
    name = f"test_bench_tpl_synthetic{revisions}"
    target = url.with_database(name)
    asyncio.run(dbadmin.drop_database(target))
    asyncio.run(dbadmin.create_database(target))
    config = Config()
    config.set_main_option("script_location", str(scripts))

    async def migrate() -> None:
        engine = db.create_engine(target, pooled=False)
        async with engine.connect() as conn:

            def upgrade(sync_conn: object) -> None:
                config.attributes["connection"] = sync_conn
                command.upgrade(config, "head")

            await conn.run_sync(upgrade)
            await conn.commit()
        await engine.dispose()
        # Record its shape the way the plugin does, so clean clones of it are kept.
        raw = await dbadmin.connect(target)
        shape = await databases.Shape.of(raw)
        await raw.execute(f"COMMENT ON DATABASE \"{name}\" IS '{shape.note('built')}'")
        await raw.close()

    asyncio.run(migrate())
    return name


def worker_setup(url: DatabaseURL, template: str) -> dict[str, float]:
    """Return median seconds: a bare CREATE ... TEMPLATE on an open connection, a new
    connection plus that CREATE (what any worker must do at least), and the plugin's
    per-worker setup, cold (the clone is created) and warm (a clean clone is reused)."""

    async def measure() -> dict[str, float]:
        times: dict[str, list[float]] = {"bare": [], "connect+bare": [], "cold": [], "warm": []}
        maintenance = url.with_database(dbadmin.MAINTENANCE_DATABASE)
        bare = url.with_database("test_bench_bare")
        conn = await dbadmin.connect(maintenance)
        await dbadmin.drop_database(url.with_database("test_bench_gw0"), conn=conn)
        try:
            for _ in range(ROUNDS):
                started = time.perf_counter()
                await conn.execute(f'CREATE DATABASE test_bench_bare TEMPLATE "{template}"')
                times["bare"].append(time.perf_counter() - started)
                await dbadmin.drop_database(bare, conn=conn)

                started = time.perf_counter()
                fresh = await dbadmin.connect(maintenance)
                await fresh.execute(f'CREATE DATABASE test_bench_bare TEMPLATE "{template}"')
                times["connect+bare"].append(time.perf_counter() - started)
                await fresh.close()
                await dbadmin.drop_database(bare, conn=conn)

                for kind in ("cold", "warm"):
                    started = time.perf_counter()
                    worker = await databases.clone(url.with_database("bench"), template, "gw0")
                    times[kind].append(time.perf_counter() - started)
                    assert worker.reused == (kind == "warm")
                    await worker.release(keep=kind == "cold")
        finally:
            await conn.close()
        return {kind: statistics.median(values) for kind, values in times.items()}

    return asyncio.run(measure())


@dataclass(frozen=True)
class Run:
    """One run of a suite: wall seconds, CPU seconds of all its processes, timing lines."""

    wall: float
    cpu: float
    lines: list[str]


def children_cpu() -> float:
    """Return the CPU seconds used so far by this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_suite(
    workdir: Path,
    body: str,
    count: int,
    *args: str,
    options: tuple[str, ...] = PROJECT_OPTIONS,
    env: Mapping[str, str] | None = None,
) -> Run:
    """Run a generated suite of ``count`` tests with pytest ``options``."""
    suite = workdir / f"suite_{abs(hash(body)) % 10_000}"
    suite.mkdir(exist_ok=True)
    (suite / "conftest.py").write_text(TIMING_CONFTEST)
    (suite / "test_generated.py").write_text(
        "\n".join(textwrap.dedent(body).format(n=n) for n in range(count))
    )
    out = suite / "timing"
    environment = dict(os.environ, PYTHONPATH=str(ROOT), BENCH_OUT=str(out))
    environment.pop("PYTHONDONTWRITEBYTECODE", None)  # both suites may cache bytecode
    environment.update(env or {})
    cpu = children_cpu()
    started = time.perf_counter()
    start_epoch = time.time()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *options, *args],
        cwd=suite,
        env=environment,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    cpu = children_cpu() - cpu
    if result.returncode != 0:
        raise SystemExit(result.stdout[-2000:] + result.stderr[-2000:])
    lines = [f"{start_epoch} " + p.read_text().strip() for p in suite.glob("timing.*")]
    for p in suite.glob("timing.*"):
        p.unlink()
    return Run(wall, cpu, lines)


def speedups(workdir: Path) -> None:
    """Print what each of the project's test speed-ups buys on the 200-test suite."""
    suite = ("-n", "2")
    variants: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
        "the project's settings": (PROJECT_OPTIONS, {}),
        "without pastetrader_fast_gc": ((*PLUGINS, *WRITE_BYTECODE), {}),
        "plugins autoloaded (Faker assertion-rewritten)": (
            ("-p", "project.testing.plugin", *FAST_GC, *WRITE_BYTECODE),
            {},
        ),
    }
    # Python only skips writing caches under PYTHONDONTWRITEBYTECODE: it still reads them.
    # So these start from an empty cache of their own (PYTHONPYCACHEPREFIX).
    for label, bytecode in (("with", WRITE_BYTECODE), ("without", ())):
        prefix = workdir / f"pycache_{label}"
        prefix.mkdir()
        variants[f"PYTHONDONTWRITEBYTECODE=1, no cache at first, {label} write_bytecode"] = (
            (*PLUGINS, *FAST_GC, *bytecode),
            {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONPYCACHEPREFIX": str(prefix)},
        )
    runs: dict[str, list[Run]] = {label: [] for label in variants}
    for options, env in variants.values():
        run_suite(workdir, SUITE, 200, *suite, options=options, env=env)
    for _ in range(RUNS):
        for label, (options, env) in variants.items():
            runs[label].append(run_suite(workdir, SUITE, 200, *suite, options=options, env=env))
    base = runs["the project's settings"]
    base_wall = statistics.median(r.wall for r in base)
    base_cpu = statistics.median(r.cpu for r in base)
    for label, measured in runs.items():
        wall = statistics.median(r.wall for r in measured)
        cpu = statistics.median(r.cpu for r in measured)
        print(
            f"  {label}: {wall:.2f} s wall ({wall - base_wall:+.2f}), {cpu:.2f} s CPU "
            f"({cpu - base_cpu:+.2f}) (medians of {RUNS})"
        )


DJANGO_MODELS = """
from django.db import models


class Tool(models.Model):
    name = models.CharField(max_length=200, unique=True)
    tool_type = models.CharField(max_length=50)
    description = models.TextField(default="")
    config = models.JSONField(default=dict)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted_at = models.DateTimeField(null=True)


class Agent(models.Model):
    name = models.CharField(max_length=200)
    tools = models.ManyToManyField(Tool)


class Workflow(models.Model):
    name = models.CharField(max_length=200)


class Node(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE)
    name = models.CharField(max_length=200)


class Edge(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.CASCADE)
    source = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")
    target = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="+")


class Run(models.Model):
    workflow = models.ForeignKey(Workflow, on_delete=models.PROTECT)
"""
DJANGO_TESTS = """
import factory
import pytest

from shop.models import Tool

pytestmark = pytest.mark.django_db


class ToolFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tool

    name = factory.Sequence(lambda n: f"tool-{n}")
    tool_type = "data_fetcher"
    description = factory.Faker("sentence")
"""
DJANGO_TEST = """

def test_{n}():
    ToolFactory.create_batch(3)
    assert Tool.objects.count() == 3
"""


class DjangoSuite:
    """The same 200-test suite on Django 5.2 + pytest-django (7 tables), in a venv of its
    own installed from PyPI, on the same server."""

    def __init__(self, workdir: Path, url: DatabaseURL) -> None:
        self.root = root = workdir / "django"
        (root / "shop" / "migrations").mkdir(parents=True)
        (root / "shop" / "__init__.py").write_text("")
        (root / "shop" / "migrations" / "__init__.py").write_text("")
        (root / "shop" / "models.py").write_text(DJANGO_MODELS)
        query = url.query_dict
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "bench_django",
            "USER": url.username or "postgres",
            "PASSWORD": url.password or "",
            "HOST": query.get("host", url.host or ""),
            "PORT": query.get("port", str(url.port or 5432)),
        }
        (root / "settings.py").write_text(
            "SECRET_KEY = 'bench'\nINSTALLED_APPS = ['shop']\nUSE_TZ = True\n"
            "DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'\n"
            f"DATABASES = {{'default': {database!r}}}\n"
        )
        (root / "pytest.ini").write_text(
            "[pytest]\nDJANGO_SETTINGS_MODULE = settings\npythonpath = .\n"
        )
        (root / "test_suite.py").write_text(
            DJANGO_TESTS + "".join(DJANGO_TEST.format(n=n) for n in range(200))
        )
        venv = root / ".venv"
        subprocess.run(["uv", "venv", "-q", "-p", sys.executable, str(venv)], check=True)
        packages = ["django>=5.2,<5.3", "pytest-django", "pytest-xdist", "psycopg[binary]"]
        subprocess.run(
            [
                "uv",
                "pip",
                "install",
                "-q",
                "-p",
                str(venv),
                "--compile-bytecode",
                *packages,
                "factory-boy",
            ],
            check=True,
        )
        python = str(venv / "bin" / "python")
        self.env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env.update(DJANGO_SETTINGS_MODULE="settings", PYTHONPATH=str(root))
        subprocess.run(
            [python, "-m", "django", "makemigrations", "shop", "-v", "0"],
            cwd=root,
            env=self.env,
            check=True,
            capture_output=True,
        )
        # The same plugins as ours: factory_boy's Faker brings a pytest plugin to both.
        self.command = [
            python,
            "-m",
            "pytest",
            "-q",
            "-n",
            "2",
            "--reuse-db",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:faker",
        ]
        self.run()  # creates the databases --reuse-db keeps

    def run(self) -> Run:
        """Run the suite once."""
        cpu = children_cpu()
        started = time.perf_counter()
        subprocess.run(self.command, cwd=self.root, env=self.env, check=True, capture_output=True)
        return Run(time.perf_counter() - started, children_cpu() - cpu, [])

    def close(self) -> None:
        """Drop the test databases pytest-django kept."""
        subprocess.run(
            [*self.command, "--create-db", "-k", "nothing"],
            cwd=self.root,
            env=self.env,
            capture_output=True,
        )


def raw_begin_rollback(url: DatabaseURL) -> float:
    """Return the median seconds of a raw asyncpg BEGIN; SELECT 1; ROLLBACK."""

    async def measure() -> float:
        conn = await dbadmin.connect(url)
        try:
            times = []
            for _ in range(2000):
                started = time.perf_counter()
                await conn.execute("BEGIN")
                await conn.execute("SELECT 1")
                await conn.execute("ROLLBACK")
                times.append(time.perf_counter() - started)
            return statistics.median(times)
        finally:
            await conn.close()

    return asyncio.run(measure())


def main() -> None:
    refuse_production()
    url = db.database_url()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        # Suites first, while the server is quiet; ours and Django's alternate, so that
        # whatever else the machine does weighs on both alike.
        django = DjangoSuite(workdir, url) if "--django" in sys.argv else None
        run_suite(workdir, SUITE, 200, "-n", "2")  # warm: the template exists after this
        ours: list[Run] = []
        theirs: list[Run] = []
        starts = []
        for _ in range(RUNS):
            run = run_suite(workdir, SUITE, 200, "-n", "2")
            ours.append(run)
            starts.append(
                max(float(line.split()[1]) - float(line.split()[0]) for line in run.lines)
            )
            if django is not None:
                theirs.append(django.run())
        wall = statistics.median(r.wall for r in ours)
        cpu = statistics.median(r.cpu for r in ours)
        print(
            f"200 factory tests, -n 2: {wall:.2f} s wall, {cpu:.2f} s CPU in all its processes "
            f"(medians of {RUNS})"
        )
        print(f"warm start (no migration run) to the first test: {statistics.median(starts):.2f} s")
        if django is not None:
            django.close()
            their_wall = statistics.median(r.wall for r in theirs)
            their_cpu = statistics.median(r.cpu for r in theirs)
            print(
                f"the same suite on Django 5.2 + pytest-django, -n 2 --reuse-db: "
                f"{their_wall:.2f} s wall, {their_cpu:.2f} s CPU (medians of {RUNS}); ours "
                f"takes {wall / their_wall:.2f}x its wall time, {cpu / their_cpu:.2f}x its CPU"
            )
        print("what each speed-up buys (against the project's settings):")
        speedups(workdir)

        run = run_suite(workdir, OVERHEAD, 200, "-p", "no:xdist")
        per_test = float(run.lines[0].split()[2])
        raw = raw_begin_rollback(db.database_url())
        print(
            f"per-test cost of a db_session test (setup+call+teardown): {per_test * 1e6:.0f} us; "
            f"raw asyncpg BEGIN/SELECT 1/ROLLBACK {raw * 1e6:.0f} us: {per_test / raw:.1f}x"
        )

        real, _ = asyncio.run(databases.ensure_template(url))
        synthetic = synthetic_template(url, 50, workdir)
        try:
            for label, template in (("real history", real), ("50 revisions", synthetic)):
                t = {k: v * 1000 for k, v in worker_setup(url, template).items()}
                print(
                    f"worker setup, {label}: bare CREATE DATABASE TEMPLATE {t['bare']:.1f} ms, "
                    f"with its connection {t['connect+bare']:.1f} ms; plugin cold "
                    f"{t['cold']:.1f} ms ({t['cold'] / t['bare']:.2f}x bare, "
                    f"{t['cold'] / t['connect+bare']:.2f}x with connection), warm "
                    f"{t['warm']:.1f} ms ({t['warm'] / t['bare']:.2f}x bare); target <= 1.2x"
                )
        finally:
            asyncio.run(dbadmin.drop_database(url.with_database(synthetic)))


if __name__ == "__main__":
    main()
