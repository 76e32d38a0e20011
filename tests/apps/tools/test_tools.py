"""The ``Tool`` model and ``ToolFactory`` against PostgreSQL: enum, JSONB, the live-name index,
soft delete, and what deleting a tool for real does to the rows that point at it."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from apps.agents.factories import AgentFactory
from apps.tools.factories import ToolFactory
from apps.tools.models import Tool
from apps.workflows.factories import NodeFactory
from project import factories
from project.enums import ToolType
from project.exceptions import ProjectError
from tests.apps.helpers import assert_enum_rejected, count_rows, violates

NESTED_CONFIG: dict[str, Any] = {
    "source": "exchange",
    "symbols": ["BTC-USD", "ETH-USD", "ÅÄÖ-€"],
    "limits": {"per_minute": 60, "burst": None, "ratio": 0.25, "enabled": True},
    "windows": [{"from": "09:30", "to": "16:00"}, {"from": None, "to": []}],
    "label": "données de marché — 市場データ 📈",
    "nothing": None,
    "empty": {},
}

# --- factory ---------------------------------------------------------------------------------


def test_build_touches_no_database() -> None:
    with pytest.raises(ProjectError):
        factories.current_session()  # no session: build must not need one

    tool = ToolFactory.build()
    assert isinstance(tool, Tool)
    assert inspect(tool).transient
    assert tool.id is None
    assert isinstance(tool.tool_type, ToolType)
    assert tool.name.startswith("tool-")
    assert tool.config  # a realistic configuration for its type
    assert tool.is_active is True
    assert tool.deleted_at is None


def test_build_gives_each_tool_its_own_config() -> None:
    first, second = ToolFactory.build_batch(2, tool_type=ToolType.DATA_FETCHER)
    assert first.config == second.config
    assert first.config is not second.config
    assert first.name != second.name


async def test_create_inserts_a_row(db_session: AsyncSession) -> None:
    tool = await ToolFactory.create(tool_type=ToolType.TECHNICAL_INDICATOR)

    assert inspect(tool).persistent
    assert tool.created_at is not None
    assert tool.updated_at is not None
    row = (
        await db_session.execute(
            text("SELECT name, tool_type, is_active FROM tools WHERE id = :id"), {"id": tool.id}
        )
    ).one()
    # The enum is stored as its value, a plain string.
    assert tuple(row) == (tool.name, "technical_indicator", True)

    db_session.expunge_all()
    loaded = await db_session.get(Tool, tool.id)
    assert loaded is not None
    assert loaded.tool_type is ToolType.TECHNICAL_INDICATOR


async def test_create_batch(db_session: AsyncSession) -> None:
    tools = await ToolFactory.create_batch(5)
    assert len({tool.id for tool in tools}) == 5
    assert len({tool.name for tool in tools}) == 5
    assert await count_rows(db_session, "SELECT count(*) FROM tools") >= 5


async def test_inactive_trait(db_session: AsyncSession) -> None:
    tool = await ToolFactory.create(inactive=True)
    assert tool.is_active is False
    stored = await db_session.scalar(
        text("SELECT is_active FROM tools WHERE id = :id"), {"id": tool.id}
    )
    assert stored is False


async def test_soft_deleted_trait(db_session: AsyncSession) -> None:
    tool = await ToolFactory.create(soft_deleted=True)
    assert tool.is_deleted is True
    assert await db_session.scalar(select(Tool).where(Tool.id == tool.id)) is None
    assert await count_rows(db_session, "SELECT count(*) FROM tools WHERE id = :id", id=tool.id)


# --- enum ----------------------------------------------------------------------------------


async def test_invalid_tool_type_is_rejected_before_the_database(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    tool = Tool(name="hammer time", tool_type="hammer")
    await assert_enum_rejected(db_session, db_engine, tool, "ToolType", "tools")
    assert (
        await count_rows(db_session, "SELECT count(*) FROM tools WHERE name = 'hammer time'") == 0
    )


async def test_invalid_tool_type_in_the_table_is_rejected_on_load(
    db_session: AsyncSession,
) -> None:
    # Raw SQL bypasses the model; reading the row back still refuses the value.
    await db_session.execute(text("INSERT INTO tools (name, tool_type) VALUES ('raw', 'hammer')"))
    with pytest.raises(ValueError, match="ToolType"):
        await db_session.scalar(select(Tool).where(Tool.name == "raw"))


async def test_tool_type_accepts_its_string_value(db_session: AsyncSession) -> None:
    tool = await ToolFactory.create(tool_type="notification")
    db_session.expunge_all()
    loaded = await db_session.get(Tool, tool.id)
    assert loaded is not None
    assert loaded.tool_type is ToolType.NOTIFICATION


# --- JSONB ---------------------------------------------------------------------------------


async def test_config_round_trips_nested_json(db_session: AsyncSession) -> None:
    tool = await ToolFactory.create(config=NESTED_CONFIG)
    db_session.expunge_all()

    loaded = await db_session.get(Tool, tool.id)
    assert loaded is not None
    assert loaded.config == NESTED_CONFIG

    def sql(expression: str) -> Any:
        return db_session.scalar(
            text(f"SELECT {expression} FROM tools WHERE id = :id"), {"id": tool.id}
        )

    assert await sql("jsonb_typeof(config)") == "object"
    assert await sql("config->>'source'") == "exchange"
    assert await sql("config->>'label'") == "données de marché — 市場データ 📈"
    assert await sql("config #>> '{symbols,2}'") == "ÅÄÖ-€"
    assert await sql("(config #> '{limits,per_minute}')::int") == 60
    assert await sql("jsonb_typeof(config #> '{limits,burst}')") == "null"
    assert await sql("jsonb_typeof(config->'nothing')") == "null"
    assert await sql("config->'empty' = '{}'::jsonb") is True
    assert await sql("jsonb_array_length(config->'windows')") == 2


async def test_config_is_queryable_through_the_orm(db_session: AsyncSession) -> None:
    wanted = await ToolFactory.create(config=NESTED_CONFIG)
    await ToolFactory.create(config={"source": "file"})

    found = await db_session.scalars(
        select(Tool).where(
            Tool.config["source"].astext == "exchange",
            Tool.config.contains({"limits": {"enabled": True}}),
        )
    )
    assert [tool.id for tool in found] == [wanted.id]


async def test_config_defaults_to_an_empty_object(db_session: AsyncSession) -> None:
    tool = Tool(name="bare", tool_type=ToolType.CODE_ANALYZER)
    db_session.add(tool)
    await db_session.flush()
    assert tool.config == {}
    assert tool.description == ""
    assert tool.is_active is True

    await db_session.execute(
        text("INSERT INTO tools (name, tool_type) VALUES ('raw bare', 'notification')")
    )
    row = (
        await db_session.execute(
            text("SELECT config, description, is_active FROM tools WHERE name = 'raw bare'")
        )
    ).one()
    assert tuple(row) == ({}, "", True)


async def test_config_change_is_saved(db_session: AsyncSession) -> None:
    tool = await ToolFactory.create(config={"a": 1})
    tool.config = {**tool.config, "b": [1, {"c": None}]}
    await db_session.flush()
    stored = await db_session.scalar(
        text("SELECT config FROM tools WHERE id = :id"), {"id": tool.id}
    )
    assert stored == {"a": 1, "b": [1, {"c": None}]}


# --- the live-name unique index --------------------------------------------------------------


async def test_two_live_tools_cannot_share_a_name(db_session: AsyncSession) -> None:
    await ToolFactory.create(name="rsi")
    async with violates(db_session, "uq_tools_name_live"):
        await ToolFactory.create(name="rsi")


async def test_a_soft_deleted_tool_frees_its_name(db_session: AsyncSession) -> None:
    old = await ToolFactory.create(name="rsi")
    old.soft_delete()
    await db_session.flush()

    new = await ToolFactory.create(name="rsi")
    assert new.id != old.id
    total = "SELECT count(*) FROM tools WHERE name = 'rsi'"
    assert await count_rows(db_session, total) == 2
    live = await db_session.scalars(select(Tool).where(Tool.name == "rsi"))
    assert [tool.id for tool in live] == [new.id]

    # Two soft-deleted tools may share a name too ...
    new.soft_delete()
    await db_session.flush()
    assert await count_rows(db_session, total + " AND deleted_at IS NOT NULL") == 2
    # ... but restoring one makes it live, and only one live tool may hold the name.
    new.restore()
    await db_session.flush()
    async with violates(db_session, "uq_tools_name_live"):
        old.restore()


# --- deleting for real -------------------------------------------------------------------------


async def test_deleting_a_tool_used_by_a_node_is_restricted(db_session: AsyncSession) -> None:
    node = await NodeFactory.create(tool_node=True)
    assert node.tool is not None
    tool_id = node.tool.id

    async with violates(db_session, "fk_nodes_tool_id_tools"):
        await db_session.delete(node.tool)

    assert await count_rows(db_session, "SELECT count(*) FROM tools WHERE id = :id", id=tool_id)


async def test_deleting_a_tool_removes_its_agent_links(db_session: AsyncSession) -> None:
    agent = await AgentFactory.create(with_tools=True)
    gone, kept = agent.tools
    links = "SELECT count(*) FROM agent_tools WHERE agent_id = :id"
    assert await count_rows(db_session, links, id=agent.id) == 2

    await db_session.execute(text("DELETE FROM tools WHERE id = :id"), {"id": gone.id})

    assert await count_rows(db_session, links, id=agent.id) == 1
    remaining = await db_session.scalar(
        text("SELECT tool_id FROM agent_tools WHERE agent_id = :id"), {"id": agent.id}
    )
    assert remaining == kept.id
