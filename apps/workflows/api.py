"""``/api/workflows``: workflows with their graph, edited under optimistic locking.

``GET /api/workflows/{id}`` loads the workflow, its nodes and its edges in three
queries whatever the graph's size (``Workflow.with_graph()``). ``PATCH`` takes the
``version`` the client read: a workflow changed since answers 409, not a silent overwrite.
A workflow's runs (``/api/workflows/{id}/executions``) are served by ``apps.executions``,
which depends on this app, never the other way.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncSession

from apps.workflows.models import Workflow
from project.api.schemas import After, Limit, Output, Page, Patch
from project.db import ReadSessionDep, SessionDep
from project.enums import NodeType, TriggerType
from project.exceptions import NotFound
from project.orm import repository
from project.orm.repository import Repository

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

router = APIRouter(tags=["workflows"])


class WorkflowIn(BaseModel):
    """A new workflow (its graph is edited separately)."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    trigger_type: TriggerType
    description: str = ""
    trigger_config: dict[str, Any] = Field(default_factory=dict)
    is_active: bool = True


class WorkflowPatch(Patch):
    """The fields of a workflow to change, and the version they were read at."""

    version: int = Field(ge=1, description="The version read; 409 when it is not current.")
    name: Name | None = None
    trigger_type: TriggerType | None = None
    description: str | None = None
    trigger_config: dict[str, Any] | None = None
    is_active: bool | None = None


class WorkflowOut(Output):
    """A workflow without its graph."""

    id: uuid.UUID
    name: str
    description: str
    trigger_type: TriggerType
    trigger_config: dict[str, Any]
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class NodeOut(Output):
    """One node of a workflow's graph."""

    id: uuid.UUID
    name: str
    node_type: NodeType
    tool_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    config: dict[str, Any]
    position_x: float
    position_y: float


class EdgeOut(Output):
    """One edge of a workflow's graph."""

    id: uuid.UUID
    source_node_id: uuid.UUID
    target_node_id: uuid.UUID
    condition: dict[str, Any] | None


class WorkflowGraphOut(WorkflowOut):
    """A workflow with its nodes and edges."""

    nodes: list[NodeOut]
    edges: list[EdgeOut]


def workflows(session: AsyncSession) -> Repository[Workflow]:
    """Return the workflows' repository on ``session``."""
    return Repository(session, Workflow)


@router.post("", status_code=201, response_model=WorkflowOut)
async def create_workflow(body: WorkflowIn, session: SessionDep) -> Workflow:
    """Create a workflow with an empty graph."""
    return await workflows(session).add(Workflow(**body.model_dump()))


@router.get("", response_model=Page[WorkflowOut])
async def list_workflows(
    session: ReadSessionDep,
    limit: Limit = 50,
    after: After = None,
    trigger_type: TriggerType | None = None,
) -> repository.Page[Workflow]:
    """List live workflows, oldest first, a page at a time (without their graphs)."""
    filters = [Workflow.trigger_type == trigger_type] if trigger_type is not None else []
    return await workflows(session).list(*filters, limit=limit, after=after)


@router.get("/{workflow_id}", response_model=WorkflowGraphOut)
async def get_workflow(workflow_id: uuid.UUID, session: ReadSessionDep) -> Workflow:
    """Return a workflow with its nodes and edges (three queries)."""
    workflow = (
        await session.scalars(Workflow.with_graph().where(Workflow.id == workflow_id))
    ).one_or_none()
    if workflow is None:
        raise NotFound(f"workflow {workflow_id} does not exist")
    return workflow


@router.patch("/{workflow_id}", response_model=WorkflowOut)
async def update_workflow(
    workflow_id: uuid.UUID, body: WorkflowPatch, session: SessionDep
) -> Workflow:
    """Change the fields sent; 409 when the workflow is no longer at ``version``."""
    changes = body.changes()
    version = changes.pop("version")
    assert isinstance(version, int)
    return await workflows(session).update(workflow_id, changes, version=version)


@router.delete("/{workflow_id}", status_code=204, response_class=Response)
async def delete_workflow(workflow_id: uuid.UUID, session: SessionDep) -> None:
    """Soft-delete a workflow with its nodes and edges."""
    await workflows(session).soft_delete(workflow_id)
