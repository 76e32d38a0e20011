"""Seeding: order, idempotence, determinism, all-or-nothing, scaling and the command."""

from __future__ import annotations

import os
import pty
import random
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from project import seeding
from project.conf import BASE_DIR
from project.db.url import DatabaseURL

TABLES = [
    "tools",
    "agents",
    "agent_tools",
    "workflows",
    "nodes",
    "edges",
    "workflow_executions",
    "node_executions",
]
#: Generated per run, so left out when comparing two runs.
GENERATED = {"id", "created_at", "updated_at", "deleted_at", "started_at", "finished_at"}


def fake(name: str, *depends_on: str, app: str = "demo") -> seeding.Seeder:
    async def run(ctx: seeding.SeedContext) -> None:
        return None

    return seeding.Seeder(name, app, run, depends_on, False)


async def counts(session: AsyncSession) -> dict[str, int]:
    result = {}
    for table in TABLES:
        result[table] = await session.scalar(text(f"SELECT count(*) FROM {table}"))
    return result


async def dump(session: AsyncSession) -> dict[str, list[tuple[Any, ...]]]:
    tables = {}
    for table in TABLES:
        columns = [
            row[0]
            for row in await session.execute(
                text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = :t AND column_name NOT LIKE '%\\_id' ORDER BY column_name"
                ),
                {"t": table},
            )
            if row[0] not in GENERATED
        ]
        if not columns:
            rows = await session.execute(text(f"SELECT count(*) FROM {table}"))
        else:
            listed = ", ".join(f"{c}::text" for c in columns)
            rows = await session.execute(text(f"SELECT {listed} FROM {table} ORDER BY {listed}"))
        tables[table] = [tuple(r) for r in rows]
    return tables


def test_discovered_seeders_run_in_dependency_order_across_apps() -> None:
    ordered = [s.name for s in seeding.plan(seeding.discover())]
    assert ordered.index("tools.builtin") < ordered.index("agents.builtin")
    assert ordered.index("agents.builtin") < ordered.index("workflows.demo")
    assert ordered.index("workflows.demo") < ordered.index("executions.history")
    selected = [s.name for s in seeding.plan(seeding.discover(), ["agents"])]
    assert selected == ["tools.builtin", "agents.builtin"]


def test_plan_orders_dependencies_declared_later() -> None:
    available = {s.name: s for s in [fake("a.late", "b.early"), fake("b.early")]}
    assert [s.name for s in seeding.plan(available)] == ["b.early", "a.late"]


def test_cycle_is_reported_by_name() -> None:
    available = {s.name: s for s in [fake("a.x", "a.y"), fake("a.y", "a.z"), fake("a.z", "a.x")]}
    with pytest.raises(seeding.SeedError, match=r"cycle: a\.x -> a\.y -> a\.z -> a\.x"):
        seeding.plan(available)


def test_unknown_dependency_and_app_are_reported() -> None:
    available = {s.name: s for s in [fake("a.x", "tools.nope")]}
    with pytest.raises(seeding.SeedError, match=r"a\.x depends on 'tools\.nope'"):
        seeding.plan(available)
    with pytest.raises(seeding.SeedError, match="no seeders in app 'shop'"):
        seeding.plan({"a.x": fake("a.x")}, ["shop"])


async def test_reference_data_is_idempotent(db_session: AsyncSession) -> None:
    first = await seeding.run(count=0)
    assert first.rows["tools"] == 8
    before = await counts(db_session)
    again = await seeding.run(count=0)
    assert await counts(db_session) == before
    assert again.rows["tools"] == again.rows["agents"] == again.rows["agent_tools"] == 0
    assert before["tools"] == 8
    assert before["agents"] == 3


async def test_reference_data_upsert_repairs_a_changed_row(db_session: AsyncSession) -> None:
    await seeding.run(["tools"], count=0)
    await db_session.execute(text("UPDATE tools SET description = 'edited' WHERE name = 'rsi'"))
    report = await seeding.run(["tools"], count=0)
    assert report.rows["tools"] == 1
    description = await db_session.scalar(text("SELECT description FROM tools WHERE name='rsi'"))
    assert description != "edited"


async def test_count_scales_the_demo_data(db_session: AsyncSession) -> None:
    report = await seeding.run(count=2_500, random_seed=3)
    assert report.rows["node_executions"] == 2_500
    assert report.rows["workflow_executions"] == 250
    assert report.rows["workflows"] == 2
    assert report.rows["nodes"] == 12
    found = await counts(db_session)
    assert found["node_executions"] == 2_500
    assert found["edges"] == 10
    # Every node run belongs to a node of its own run's workflow.
    mismatched = await db_session.scalar(
        text(
            "SELECT count(*) FROM node_executions ne "
            "JOIN workflow_executions we ON we.id = ne.workflow_execution_id "
            "JOIN nodes n ON n.id = ne.node_id WHERE n.workflow_id <> we.workflow_id"
        )
    )
    assert mismatched == 0


async def test_same_random_seed_gives_identical_data(db_session: AsyncSession) -> None:
    # Each run starts from the empty database: a savepoint rolled back after it.
    connection = await db_session.connection()
    dumps = []
    for random_seed in (42, 42, 43):
        savepoint = await connection.begin_nested()
        await seeding.run(count=300, random_seed=random_seed)
        dumps.append(await dump(db_session))
        await savepoint.rollback()
    assert dumps[0] == dumps[1]
    assert len(dumps[0]["node_executions"]) == 300
    assert dumps[2] != dumps[0]


async def test_a_failing_seeder_leaves_nothing_behind(
    db_session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = seeding.discover()

    async def explode(ctx: seeding.SeedContext) -> None:
        raise RuntimeError("disk on fire")

    broken = seeding.Seeder("zz.broken", "zz", explode, ("executions.history",), False)
    monkeypatch.setattr(seeding, "discover", lambda: {**real, broken.name: broken})
    with pytest.raises(seeding.SeedError, match=r"seeder zz\.broken failed: RuntimeError: disk"):
        await seeding.run(count=100)
    assert set((await counts(db_session)).values()) == {0}


async def test_negative_count_is_refused() -> None:
    with pytest.raises(seeding.SeedError, match="must not be negative"):
        await seeding.run(count=-1)


def test_report_lines_list_tables_and_time() -> None:
    report = seeding.SeedReport({"tools.builtin": 0.1}, Counter(tools=8), 0.25)
    lines = report.lines()
    assert lines[0] == "Seeded 8 rows with 1 seeders in 0.25 s"
    assert lines[1].split() == ["tools", "8"]


def _manage(url: DatabaseURL, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL=url.render(hide_password=False))
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_seed_command_prints_a_summary_without_a_bar_off_terminal(scratch_db: DatabaseURL) -> None:
    assert _manage(scratch_db, "migrate").returncode == 0
    result = _manage(scratch_db, "seed", "--count", "20", "--random-seed", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Seeded ")
    assert "node_executions" in result.stdout
    assert "%" not in result.stdout  # no progress bar
    bad = _manage(scratch_db, "seed", "nope")
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == [
        "Error: no seeders in app 'nope'; apps with seeders: "
        "['agents', 'executions', 'tools', 'workflows']"
    ]


def test_seed_command_shows_progress_on_a_terminal(scratch_db: DatabaseURL) -> None:
    assert _manage(scratch_db, "migrate").returncode == 0
    main, child = pty.openpty()
    env = dict(os.environ, DATABASE_URL=scratch_db.render(hide_password=False))
    process = subprocess.Popen(
        [sys.executable, "manage.py", "seed", "--count", "5000"],
        cwd=BASE_DIR,
        env=env,
        stdout=child,
        stderr=child,
    )
    os.close(child)
    output = b""
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=120) == 0
    os.close(main)
    text_out = output.decode(errors="replace")
    assert "executions.history" in text_out
    assert "tools.builtin (reference data): 8 rows" in text_out
    assert "Seeded " in text_out


def test_resetdb_seed_uses_the_same_path(scratch_db: DatabaseURL) -> None:
    result = _manage(scratch_db, "resetdb", "--yes", "--seed")
    assert result.returncode == 0, result.stderr
    assert "Seeded " in result.stdout
    check = _manage(scratch_db, "dbshell", "-c", "SELECT count(*) FROM tools", "-tA")
    assert check.stdout.strip() == "8"


async def test_rows_must_agree_on_their_fields(db_session: AsyncSession) -> None:
    from apps.tools.models import Tool

    ctx = seeding.SeedContext(session=db_session, count=0, random=random.Random(1))
    rows: list[dict[str, Any]] = [
        {"name": "a", "tool_type": "notification"},
        {"name": "b", "tool_type": "notification", "created_at": None},
    ]
    with pytest.raises(seeding.SeedError, match=r"set \['created_at'\]"):
        await ctx.write(Tool, rows)
