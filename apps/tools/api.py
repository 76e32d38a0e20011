"""``/api/tools``: create, list, read, update and soft-delete tools.

The pattern the other apps follow: pydantic schemas in and out (they make ``/docs``),
a ``Repository`` on the request's session, and typed errors the app turns into 404, 409
and 422. Reads take ``ReadSessionDep``: a read-only session on a replica when one is configured
and has this request's writes, else on the primary.

An endpoint returns the rows and names its schema in ``response_model``: FastAPI then
reads the response from the rows' attributes once. Building the schema in the endpoint
too would validate every response twice (FastAPI validates what an endpoint returns).
A read that only answers takes the schema's columns (``Repository.values()``), not an
entity.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession

from apps.tools.models import Tool
from project.api.schemas import After, Limit, Output, Page, Patch
from project.db import ReadSessionDep, SessionDep
from project.enums import ToolType
from project.orm import repository
from project.orm.repository import Repository

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

router = APIRouter(tags=["tools"])


class ToolIn(BaseModel):
    """A new tool."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    tool_type: ToolType
    description: str = ""
    config: dict[str, Any] = Field(default_factory=dict)
    is_active: bool = True


class ToolPatch(Patch):
    """The fields of a tool to change."""

    name: Name | None = None
    tool_type: ToolType | None = None
    description: str | None = None
    config: dict[str, Any] | None = None
    is_active: bool | None = None


class ToolOut(Output):
    """A tool as the API shows it."""

    id: uuid.UUID
    name: str
    tool_type: ToolType
    description: str
    config: dict[str, Any]
    is_active: bool
    created_at: datetime
    updated_at: datetime


def tools(session: AsyncSession) -> Repository[Tool]:
    """Return the tools' repository on ``session``."""
    return Repository(session, Tool)


@router.post("", status_code=201, response_model=ToolOut)
async def create_tool(body: ToolIn, session: SessionDep) -> Tool:
    """Create a tool; 409 when a live tool has its name."""
    return await tools(session).add(Tool(**body.model_dump()))


@router.get("", response_model=Page[ToolOut])
async def list_tools(
    session: ReadSessionDep,
    limit: Limit = 50,
    after: After = None,
    tool_type: ToolType | None = None,
) -> repository.Page[Tool]:
    """List live tools, oldest first, a page at a time."""
    filters = [Tool.tool_type == tool_type] if tool_type is not None else []
    return await tools(session).list(*filters, limit=limit, after=after)


@router.get("/{tool_id}", response_model=ToolOut)
async def get_tool(tool_id: uuid.UUID, session: ReadSessionDep) -> Row[Any]:
    """Return one tool; 404 when there is none (or it was deleted)."""
    return await tools(session).values(tool_id, *ToolOut.model_fields)


@router.patch("/{tool_id}", response_model=ToolOut)
async def update_tool(tool_id: uuid.UUID, body: ToolPatch, session: SessionDep) -> Tool:
    """Change the fields sent; 409 when the new name is taken."""
    return await tools(session).update(tool_id, body.changes())


@router.delete("/{tool_id}", status_code=204, response_class=Response)
async def delete_tool(tool_id: uuid.UUID, session: SessionDep) -> None:
    """Soft-delete a tool: it disappears from the API and its name is free again."""
    await tools(session).soft_delete(tool_id)
