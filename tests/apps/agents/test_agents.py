"""The ``Agent`` model, its link table to tools, and ``AgentFactory`` against PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, inspect, select, text
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from apps.agents.factories import AUTH, MODELS, AgentFactory
from apps.agents.models import Agent, agent_tools
from apps.tools.factories import ToolFactory
from apps.tools.models import Tool
from apps.workflows.factories import NodeFactory
from project.enums import AuthMode, ModelProvider
from tests.apps.helpers import assert_enum_rejected, count_rows, violates

LINKS = "SELECT count(*) FROM agent_tools WHERE agent_id = :id"


async def _load_agent(
    session: AsyncSession, agent: Agent, *, include_deleted: bool = False
) -> Agent:
    session.expunge_all()
    statement = (
        select(Agent)
        .where(Agent.id == agent.id)
        .options(selectinload(Agent.tools))
        .execution_options(include_deleted=include_deleted)
    )
    return (await session.scalars(statement)).one()


# --- factory ---------------------------------------------------------------------------------


def test_build_touches_no_database() -> None:
    agent = AgentFactory.build()
    assert isinstance(agent, Agent)
    assert inspect(agent).transient
    assert agent.id is None
    assert isinstance(agent.model_provider, ModelProvider)
    # The model and the auth mode fit the provider.
    assert agent.model_name == MODELS[agent.model_provider]
    assert agent.auth_mode is AUTH[agent.model_provider]
    assert agent.system_prompt
    assert agent.is_active is True


def test_build_with_tools_needs_no_database() -> None:
    agent = AgentFactory.build(with_tools=True)
    assert len(agent.tools) == 2
    assert all(inspect(tool).transient for tool in agent.tools)


async def test_create_inserts_a_row(db_session: AsyncSession) -> None:
    agent = await AgentFactory.create(model_provider=ModelProvider.GLM)
    assert inspect(agent).persistent
    row = (
        await db_session.execute(
            text("SELECT model_provider, model_name, auth_mode FROM agents WHERE id = :id"),
            {"id": agent.id},
        )
    ).one()
    assert tuple(row) == ("glm", "glm-4.6", "glm")
    assert await count_rows(db_session, LINKS, id=agent.id) == 0


async def test_with_tools_trait_links_two_saved_tools(db_session: AsyncSession) -> None:
    agent = await AgentFactory.create(with_tools=True)
    assert await count_rows(db_session, LINKS, id=agent.id) == 2

    loaded = await _load_agent(db_session, agent)
    assert len(loaded.tools) == 2
    assert [tool.name for tool in loaded.tools] == sorted(tool.name for tool in loaded.tools)


async def test_soft_deleted_trait(db_session: AsyncSession) -> None:
    agent = await AgentFactory.create(soft_deleted=True)
    assert agent.is_deleted is True
    assert await db_session.scalar(select(Agent).where(Agent.id == agent.id)) is None
    assert await count_rows(db_session, "SELECT count(*) FROM agents WHERE id = :id", id=agent.id)


# --- enums ---------------------------------------------------------------------------------


async def test_invalid_model_provider_is_rejected(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    agent = AgentFactory.build(model_provider="skynet", model_name="t-800", auth_mode="sdk")
    await assert_enum_rejected(db_session, db_engine, agent, "ModelProvider", "agents")


async def test_invalid_auth_mode_is_rejected(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    agent = AgentFactory.build(auth_mode="password")
    await assert_enum_rejected(db_session, db_engine, agent, "AuthMode", "agents")


async def test_enums_load_back_as_members(db_session: AsyncSession) -> None:
    agent = await AgentFactory.create(
        model_provider="openai", model_name="gpt-4.1", auth_mode="oauth"
    )
    db_session.expunge_all()
    loaded = await db_session.get(Agent, agent.id)
    assert loaded is not None
    assert loaded.model_provider is ModelProvider.OPENAI
    assert loaded.auth_mode is AuthMode.OAUTH


async def test_config_round_trips(db_session: AsyncSession) -> None:
    config = {"temperature": 0.0, "stop": ["\n\n", "ÿ"], "extra": {"tools": None}}
    agent = await AgentFactory.create(config=config)
    db_session.expunge_all()
    loaded = await db_session.get(Agent, agent.id)
    assert loaded is not None
    assert loaded.config == config
    stored = await db_session.scalar(
        text("SELECT config #>> '{stop,1}' FROM agents WHERE id = :id"), {"id": agent.id}
    )
    assert stored == "ÿ"


# --- the live-name unique index --------------------------------------------------------------


async def test_two_live_agents_cannot_share_a_name(db_session: AsyncSession) -> None:
    await AgentFactory.create(name="analyst")
    async with violates(db_session, "uq_agents_name_live"):
        await AgentFactory.create(name="analyst")


async def test_a_soft_deleted_agent_frees_its_name(db_session: AsyncSession) -> None:
    old = await AgentFactory.create(name="analyst")
    old.soft_delete()
    await db_session.flush()

    new = await AgentFactory.create(name="analyst")
    live = await db_session.scalars(select(Agent).where(Agent.name == "analyst"))
    assert [agent.id for agent in live] == [new.id]
    assert await count_rows(db_session, "SELECT count(*) FROM agents WHERE name = 'analyst'") == 2


# --- the agent_tools link table ----------------------------------------------------------------


async def test_an_agent_links_a_tool_once(db_session: AsyncSession) -> None:
    agent = await AgentFactory.create(with_tools=True)
    tool = agent.tools[0]
    async with violates(db_session, "pk_agent_tools"):
        await db_session.execute(insert(agent_tools).values(agent_id=agent.id, tool_id=tool.id))


async def test_an_agent_links_only_existing_tools(db_session: AsyncSession) -> None:
    agent = await AgentFactory.create()
    tool = await ToolFactory.create()
    await db_session.execute(text("DELETE FROM tools WHERE id = :id"), {"id": tool.id})
    async with violates(db_session, "fk_agent_tools_tool_id_tools"):
        await db_session.execute(insert(agent_tools).values(agent_id=agent.id, tool_id=tool.id))


@pytest.mark.parametrize("tools_loaded", [True, False], ids=["tools loaded", "tools not loaded"])
async def test_deleting_an_agent_removes_its_tool_links(
    db_session: AsyncSession, tools_loaded: bool
) -> None:
    agent = await AgentFactory.create(with_tools=True)
    tool_ids = [tool.id for tool in agent.tools]
    db_session.expunge_all()
    statement = select(Agent).where(Agent.id == agent.id)
    if tools_loaded:
        statement = statement.options(selectinload(Agent.tools))
    loaded = (await db_session.scalars(statement)).one()

    await db_session.delete(loaded)
    await db_session.flush()

    assert await count_rows(db_session, LINKS, id=agent.id) == 0
    assert (
        await count_rows(db_session, "SELECT count(*) FROM agents WHERE id = :id", id=agent.id) == 0
    )
    # The tools themselves stay.
    tools = "SELECT count(*) FROM tools WHERE id = ANY(:ids)"
    assert await count_rows(db_session, tools, ids=tool_ids) == 2


async def test_deleting_an_agent_used_by_a_node_is_restricted(db_session: AsyncSession) -> None:
    node = await NodeFactory.create(agent_node=True)
    assert node.agent is not None
    async with violates(db_session, "fk_nodes_agent_id_agents"):
        await db_session.delete(node.agent)


# --- loading tools -------------------------------------------------------------------------


async def test_unloaded_tools_raise_instead_of_loading(db_session: AsyncSession) -> None:
    agent = await AgentFactory.create(with_tools=True)
    db_session.expunge_all()
    loaded = await db_session.get(Agent, agent.id)
    assert loaded is not None
    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = loaded.tools


async def test_soft_deleted_tool_is_hidden_from_agent_tools(db_session: AsyncSession) -> None:
    agent = await AgentFactory.create(with_tools=True)
    gone, kept = agent.tools
    gone.soft_delete()
    await db_session.flush()

    loaded = await _load_agent(db_session, agent)
    assert [tool.id for tool in loaded.tools] == [kept.id]
    # The link is still there; the opt-out shows the tool again.
    assert await count_rows(db_session, LINKS, id=agent.id) == 2
    everything = await _load_agent(db_session, agent, include_deleted=True)
    assert {tool.id for tool in everything.tools} == {gone.id, kept.id}


async def test_agent_tools_are_ordered_by_name(db_session: AsyncSession) -> None:
    tools = [ToolFactory.build(name=name) for name in ("zeta", "alpha", "mu")]
    agent = await AgentFactory.create(tools=tools)
    loaded = await _load_agent(db_session, agent)
    assert [tool.name for tool in loaded.tools] == ["alpha", "mu", "zeta"]
    assert all(isinstance(tool, Tool) for tool in loaded.tools)
