"""``Repository[Model]`` against the real PostgreSQL: reads, pages, writes, typed errors."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from apps.agents.factories import AgentFactory
from apps.agents.models import Agent
from apps.tools.factories import ToolFactory
from apps.tools.models import Tool
from apps.workflows.factories import WorkflowFactory
from apps.workflows.models import Workflow
from project.db import session_scope
from project.enums import ToolType
from project.exceptions import Conflict, InvalidCursor, NotFound, ProjectError, StaleVersion
from project.orm.repository import Repository, decode_cursor, encode_cursor
from project.testing.sql import recorded_statements


def _tools(session: AsyncSession) -> Repository[Tool]:
    return Repository(session, Tool)


async def test_get_returns_the_row_and_raises_not_found(db_session: AsyncSession) -> None:
    tool = await ToolFactory.create()
    tools = _tools(db_session)
    assert await tools.get(tool.id) is tool
    missing = uuid.uuid4()
    assert await tools.get_or_none(missing) is None
    with pytest.raises(NotFound, match=f"tool {missing} does not exist"):
        await tools.get(missing)


async def test_soft_deleted_rows_are_out_unless_asked(db_session: AsyncSession) -> None:
    tool = await ToolFactory.create()
    tools = _tools(db_session)
    await tools.soft_delete(tool.id)
    assert await tools.get_or_none(tool.id) is None
    assert await tools.count() == 0
    assert not await tools.exists(Tool.id == tool.id)
    assert await tools.exists(Tool.id == tool.id, include_deleted=True)
    assert await tools.get(tool.id, include_deleted=True) is tool
    assert (await tools.list()).items == []
    await tools.restore(tool.id)
    assert await tools.get(tool.id) is tool


async def test_a_read_by_key_sends_one_statement_with_the_filter_once(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    live, gone = await ToolFactory.create_batch(2)
    tools = _tools(db_session)
    await tools.soft_delete(gone.id)
    with recorded_statements(db_engine) as statements:
        assert await tools.get(live.id) is live
        assert await Repository(db_session, Tool).get_or_none(gone.id) is None
        assert await tools.get_or_none(gone.id, include_deleted=True) is gone
    # The same prepared text each time, the key bound: the select is built once per model.
    assert statements[0] == statements[1]
    assert statements[0].count("deleted_at IS NULL") == 1
    assert "deleted_at" not in statements[2].split("WHERE", 1)[1]


async def test_a_read_by_key_with_options_keeps_them_and_the_filter(
    db_session: AsyncSession,
) -> None:
    tool, gone = await ToolFactory.create_batch(2)
    agent = await AgentFactory.create()
    await db_session.execute(
        text("INSERT INTO agent_tools (agent_id, tool_id) VALUES (:a, :t), (:a, :g)"),
        {"a": agent.id, "t": tool.id, "g": gone.id},
    )
    await _tools(db_session).soft_delete(gone.id)
    agent_id = agent.id
    db_session.expunge_all()
    agents = Repository(db_session, Agent, options=[selectinload(Agent.tools)])
    # The related rows load through the session's soft-delete criteria.
    assert [t.id for t in (await agents.get(agent_id)).tools] == [tool.id]
    await agents.soft_delete(agent_id)
    assert await agents.get_or_none(agent_id) is None
    assert await agents.get_or_none(agent_id, options=[]) is None
    assert await agents.get_or_none(agent_id, include_deleted=True) is not None


async def test_values_reads_columns_and_loads_no_entity(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    tool, gone = await ToolFactory.create_batch(2, config={"period": 14})
    tools = _tools(db_session)
    await tools.soft_delete(gone.id)
    db_session.expunge_all()
    with recorded_statements(db_engine) as statements:
        row = await tools.values(tool.id, "name", "tool_type", "config")
        again = await Repository(db_session, Tool).values(tool.id, "name", "tool_type", "config")
    assert (row.name, row.tool_type, row.config) == (tool.name, tool.tool_type, {"period": 14})
    assert isinstance(row.tool_type, ToolType)  # the columns' types still apply
    assert row == again
    assert statements[0] == statements[1]  # one select per model and columns, built once
    assert statements[0].count("deleted_at IS NULL") == 1
    assert len(db_session.identity_map) == 0
    with pytest.raises(NotFound, match=f"tool {gone.id} does not exist"):
        await tools.values(gone.id)
    every = await tools.values(gone.id, include_deleted=True)
    assert (every.id, every.deleted_at is not None) == (gone.id, True)
    with pytest.raises(ProjectError, match="Tool has no column 'nope'"):
        await tools.values(tool.id, "nope")


async def test_get_for_update_locks_and_reads_the_row_again(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    tool = await ToolFactory.create(description="old")
    tools = _tools(db_session)
    await db_session.execute(
        text("UPDATE tools SET description = 'new' WHERE id = :id"), {"id": tool.id}
    )
    with recorded_statements(db_engine) as statements:
        assert await tools.get(tool.id, for_update=True) is tool
    assert tool.description == "new"
    assert statements[-1].rstrip().endswith("FOR UPDATE")
    await tools.soft_delete(tool.id)
    assert await tools.get_or_none(tool.id, for_update=True) is None
    assert await tools.get(tool.id, include_deleted=True, for_update=True) is tool


async def test_list_pages_by_key_with_filters(db_session: AsyncSession) -> None:
    made = await ToolFactory.create_batch(7, tool_type=ToolType.NOTIFICATION)
    await ToolFactory.create(tool_type=ToolType.CODE_ANALYZER)
    tools = _tools(db_session)
    seen: list[uuid.UUID] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = await tools.list(Tool.tool_type == ToolType.NOTIFICATION, limit=3, after=cursor)
        seen += [tool.id for tool in page.items]
        pages += 1
        cursor = page.next
        if cursor is None:
            break
    assert seen == sorted(tool.id for tool in made)
    assert pages == 3
    newest = await tools.list(Tool.tool_type == ToolType.NOTIFICATION, order="desc", limit=2)
    assert [tool.id for tool in newest.items] == sorted((t.id for t in made), reverse=True)[:2]
    rest = await tools.list(
        Tool.tool_type == ToolType.NOTIFICATION, order="desc", limit=10, after=newest.next
    )
    assert len(rest.items) == 5
    assert rest.next is None


async def test_count_and_exists(db_session: AsyncSession) -> None:
    await ToolFactory.create_batch(3, is_active=True)
    await ToolFactory.create(is_active=False)
    tools = _tools(db_session)
    assert await tools.count() == 4
    assert await tools.count(Tool.is_active.is_(False)) == 1
    assert await tools.exists(Tool.is_active.is_(False))
    assert not await tools.exists(Tool.name == "nobody")


@pytest.mark.parametrize("cursor", ["", "x", "!" * 22, "A" * 21 + "B", "A" * 23, "A" * 22 + "="])
def test_a_foreign_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(cursor)


def test_a_cursor_round_trips() -> None:
    ident = uuid.uuid4()
    assert decode_cursor(encode_cursor(ident)) == ident
    assert len(encode_cursor(ident)) == 22


async def test_add_many_batches_its_inserts(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    tools = _tools(db_session)
    with recorded_statements(db_engine) as statements:
        added = await tools.add_many(
            Tool(name=f"batch-{i}", tool_type=ToolType.NOTIFICATION) for i in range(50)
        )
    assert len([s for s in statements if s.lstrip().upper().startswith("INSERT")]) == 1
    assert all(tool.created_at is not None for tool in added)
    assert await tools.count() == 50


async def test_add_of_a_taken_name_is_a_conflict(db_session: AsyncSession) -> None:
    await ToolFactory.create(name="taken")
    tools = _tools(db_session)
    with pytest.raises(Conflict, match="uq_tools_name_live") as caught:
        async with db_session.begin_nested():
            await tools.add(Tool(name="taken", tool_type=ToolType.NOTIFICATION))
    # The error names the constraint, never the value that collided.
    assert "taken" not in str(caught.value)
    assert await tools.count() == 1


async def test_update_is_partial(db_session: AsyncSession) -> None:
    tool = await ToolFactory.create(description="old", is_active=True)
    before = tool.updated_at
    updated = await _tools(db_session).update(tool.id, {"description": "new"})
    assert (updated.description, updated.is_active) == ("new", True)
    assert updated.updated_at > before
    with pytest.raises(ProjectError, match="no settable column 'id'"):
        await _tools(db_session).update(tool, {"id": uuid.uuid4()})


async def test_update_checks_the_version(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create()
    workflows = Repository(db_session, Workflow)
    updated = await workflows.update(workflow.id, {"name": "renamed"}, version=1)
    assert updated.version == 2
    with pytest.raises(StaleVersion, match="at version 2, not 1"):
        await workflows.update(workflow.id, {"name": "again"}, version=1)


async def test_a_concurrent_change_makes_update_stale(transactional_db: AsyncEngine) -> None:
    async with session_scope() as session:
        workflow = await WorkflowFactory.create(_session=session)
    async with session_scope() as first, session_scope() as second:
        mine = await Repository(first, Workflow).get(workflow.id)
        theirs = await Repository(second, Workflow).get(workflow.id)
        await Repository(second, Workflow).update(theirs, {"name": "theirs"}, version=1)
        await second.commit()
        with pytest.raises(StaleVersion, match="changed by someone else"):
            await Repository(first, Workflow).update(mine, {"name": "mine"}, version=1)
        await first.rollback()
    async with session_scope() as session:
        assert (await Repository(session, Workflow).get(workflow.id)).name == "theirs"


async def test_upsert_inserts_then_updates_on_the_natural_key(db_session: AsyncSession) -> None:
    tools = _tools(db_session)
    values = {"name": "rsi", "tool_type": ToolType.TECHNICAL_INDICATOR, "description": "v1"}
    first = await tools.upsert(values, on=["name"])
    second = await tools.upsert({**values, "description": "v2"}, on=["name"])
    assert second.id == first.id
    assert second.description == "v2"
    assert await tools.count() == 1
    # A soft-deleted row does not hold the name: the next upsert makes a new row.
    await tools.soft_delete(second)
    third = await tools.upsert(values, on=["name"])
    assert third.id != first.id
    with pytest.raises(ProjectError, match="no unique key on description"):
        await tools.upsert(values, on=["description"])


async def test_upsert_under_concurrency_leaves_one_row(transactional_db: AsyncEngine) -> None:
    async def upsert(n: int) -> uuid.UUID:
        async with session_scope() as session:
            tool = await _tools(session).upsert(
                {"name": "shared", "tool_type": ToolType.NOTIFICATION, "description": str(n)},
                on=["name"],
            )
            return tool.id

    ids = await asyncio.gather(*(upsert(n) for n in range(20)))
    assert len(set(ids)) == 1
    async with transactional_db.connect() as connection:
        rows = (await connection.execute(text("SELECT count(*) FROM tools"))).scalar()
    assert rows == 1


async def test_delete_removes_the_row(db_session: AsyncSession) -> None:
    tool = await ToolFactory.create()
    tools = _tools(db_session)
    await tools.delete(tool.id)
    assert not await tools.exists(Tool.id == tool.id, include_deleted=True)


async def test_loader_options_mean_no_lazy_load(db_session: AsyncSession) -> None:
    tool = await ToolFactory.create(name="a-tool")
    agent = await AgentFactory.create()
    agent_id = agent.id
    await db_session.execute(
        text("INSERT INTO agent_tools (agent_id, tool_id) VALUES (:a, :t)"),
        {"a": agent_id, "t": tool.id},
    )
    db_session.expunge_all()
    agents = Repository(db_session, Agent, options=[selectinload(Agent.tools)])
    loaded = await agents.get(agent_id)
    assert [t.name for t in loaded.tools] == ["a-tool"]
    page = await agents.list()
    assert [t.name for t in page.items[0].tools] == ["a-tool"]


def test_a_repository_needs_a_model() -> None:
    with pytest.raises(ProjectError, match="needs a model"):
        Repository(AsyncSession())


class ToolRepository(Repository[Tool]):
    model = Tool


async def test_a_subclass_names_its_model(db_session: AsyncSession) -> None:
    tool = await ToolFactory.create()
    assert await ToolRepository(db_session).get(tool.id) is tool
