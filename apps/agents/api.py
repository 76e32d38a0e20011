"""``/api/agents``: create, list, read, update and soft-delete agents with their tools.

The agent's tools load with it (``selectinload``), so no response lazy-loads.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from apps.agents.models import Agent
from apps.tools.models import Tool
from project.api.schemas import After, Limit, Output, Page, Patch
from project.db import ReadSessionDep, SessionDep
from project.enums import AuthMode, ModelProvider
from project.orm.repository import Repository

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
ModelName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

router = APIRouter(tags=["agents"])


class AgentIn(BaseModel):
    """A new agent."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    model_provider: ModelProvider
    model_name: ModelName
    auth_mode: AuthMode
    system_prompt: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    is_active: bool = True
    tool_ids: list[uuid.UUID] = Field(default_factory=list, max_length=200)


class AgentPatch(Patch):
    """The fields of an agent to change; ``tool_ids`` replaces its tools."""

    name: Name | None = None
    model_provider: ModelProvider | None = None
    model_name: ModelName | None = None
    auth_mode: AuthMode | None = None
    system_prompt: str | None = None
    config: dict[str, Any] | None = None
    is_active: bool | None = None
    tool_ids: list[uuid.UUID] | None = Field(default=None, max_length=200)


class AgentOut(Output):
    """An agent as the API shows it, with the keys of its tools."""

    id: uuid.UUID
    name: str
    model_provider: ModelProvider
    model_name: str
    auth_mode: AuthMode
    system_prompt: str
    config: dict[str, Any]
    is_active: bool
    tool_ids: list[uuid.UUID]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, agent: Agent) -> AgentOut:
        """Return the schema of ``agent`` (its tools loaded)."""
        fields = {name: getattr(agent, name) for name in cls.model_fields if name != "tool_ids"}
        return cls(**fields, tool_ids=[tool.id for tool in agent.tools])


def agents(session: AsyncSession) -> Repository[Agent]:
    """Return the agents' repository on ``session``, loading their tools."""
    return Repository(session, Agent, options=[selectinload(Agent.tools)])


async def _tools(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[Tool]:
    """Return the live tools with ``ids``; 422 naming those that do not exist."""
    found = list((await session.scalars(select(Tool).where(Tool.id.in_(ids)))).all())
    missing = sorted(set(ids) - {tool.id for tool in found})
    if missing:
        raise HTTPException(422, f"no such tool: {', '.join(map(str, missing))}")
    return found


@router.post("", status_code=201)
async def create_agent(body: AgentIn, session: SessionDep) -> AgentOut:
    """Create an agent; 409 when a live agent has its name."""
    values = body.model_dump(exclude={"tool_ids"})
    agent = Agent(**values, tools=await _tools(session, body.tool_ids))
    return AgentOut.of(await agents(session).add(agent))


@router.get("")
async def list_agents(
    session: ReadSessionDep, limit: Limit = 50, after: After = None
) -> Page[AgentOut]:
    """List live agents, oldest first, a page at a time."""
    page = await agents(session).list(limit=limit, after=after)
    return Page(items=[AgentOut.of(agent) for agent in page.items], next=page.next)


@router.get("/{agent_id}")
async def get_agent(agent_id: uuid.UUID, session: ReadSessionDep) -> AgentOut:
    """Return one agent; 404 when there is none (or it was deleted)."""
    return AgentOut.of(await agents(session).get(agent_id))


@router.patch("/{agent_id}")
async def update_agent(agent_id: uuid.UUID, body: AgentPatch, session: SessionDep) -> AgentOut:
    """Change the fields sent; 409 when the new name is taken."""
    repository = agents(session)
    agent = await repository.get(agent_id)
    changes = body.changes()
    if "tool_ids" in changes:
        tool_ids = changes.pop("tool_ids")
        assert isinstance(tool_ids, list)
        agent.tools = await _tools(session, tool_ids)
    return AgentOut.of(await repository.update(agent, changes))


@router.delete("/{agent_id}", status_code=204, response_class=Response)
async def delete_agent(agent_id: uuid.UUID, session: SessionDep) -> None:
    """Soft-delete an agent: it disappears from the API and its name is free again."""
    await agents(session).soft_delete(agent_id)
