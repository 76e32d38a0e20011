"""``/api/agents``: create, list, read, update and soft-delete agents with their tools.

The agent's tools load with it (``selectinload``), so no response lazy-loads. As in
``apps.tools.api``, endpoints return the rows and FastAPI reads ``AgentOut`` from them
once; ``tool_ids`` comes from the loaded ``tools``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Response
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, StringConstraints, field_validator
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from apps.agents.models import Agent
from apps.tools.models import Tool
from project.api.schemas import After, Limit, Output, Page, Patch
from project.db import ReadSessionDep, SessionDep
from project.enums import AuthMode, ModelProvider
from project.orm import repository
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
    # Read from an Agent, the keys of its loaded tools; from a mapping, ``tool_ids``.
    tool_ids: list[uuid.UUID] = Field(validation_alias=AliasChoices("tool_ids", "tools"))
    created_at: datetime
    updated_at: datetime

    @field_validator("tool_ids", mode="before")
    @classmethod
    def _keys(cls, value: Any) -> Any:
        return [getattr(item, "id", item) for item in value]


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


@router.post("", status_code=201, response_model=AgentOut)
async def create_agent(body: AgentIn, session: SessionDep) -> Agent:
    """Create an agent; 409 when a live agent has its name."""
    values = body.model_dump(exclude={"tool_ids"})
    agent = Agent(**values, tools=await _tools(session, body.tool_ids))
    return await agents(session).add(agent)


@router.get("", response_model=Page[AgentOut])
async def list_agents(
    session: ReadSessionDep, limit: Limit = 50, after: After = None
) -> repository.Page[Agent]:
    """List live agents, oldest first, a page at a time."""
    return await agents(session).list(limit=limit, after=after)


@router.get("/{agent_id}", response_model=AgentOut)
async def get_agent(agent_id: uuid.UUID, session: ReadSessionDep) -> Agent:
    """Return one agent; 404 when there is none (or it was deleted)."""
    return await agents(session).get(agent_id)


@router.patch("/{agent_id}", response_model=AgentOut)
async def update_agent(agent_id: uuid.UUID, body: AgentPatch, session: SessionDep) -> Agent:
    """Change the fields sent; 409 when the new name is taken."""
    repo = agents(session)
    agent = await repo.get(agent_id)
    changes = body.changes()
    if "tool_ids" in changes:
        tool_ids = changes.pop("tool_ids")
        assert isinstance(tool_ids, list)
        agent.tools = await _tools(session, tool_ids)
    return await repo.update(agent, changes)


@router.delete("/{agent_id}", status_code=204, response_class=Response)
async def delete_agent(agent_id: uuid.UUID, session: SessionDep) -> None:
    """Soft-delete an agent: it disappears from the API and its name is free again."""
    await agents(session).soft_delete(agent_id)
