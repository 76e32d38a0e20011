"""``/api/workflows/{id}/executions``: a workflow's runs, newest first, by status.

The URL nests under the workflow's, but the route lives here: a run belongs to a
workflow, so this app depends on ``apps.workflows`` and not the other way. ``prefix``
tells ``project.asgi`` to mount ``router`` there instead of under ``/api/executions``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from apps.executions.models import WorkflowExecution
from apps.workflows.models import Workflow
from project.api.schemas import After, Limit, Output, Page
from project.db import ReadSessionDep
from project.enums import ExecutionStatus, TriggerType
from project.exceptions import NotFound
from project.orm import repository
from project.orm.repository import Repository

prefix = "/api/workflows"
router = APIRouter(tags=["executions"])


class ExecutionOut(Output):
    """One run of a workflow."""

    id: uuid.UUID
    workflow_id: uuid.UUID
    trigger_type: TriggerType
    status: ExecutionStatus
    started_at: datetime | None
    finished_at: datetime | None
    input: dict[str, Any]
    output: dict[str, Any] | None
    error: str | None
    created_at: datetime


@router.get("/{workflow_id}/executions", response_model=Page[ExecutionOut])
async def list_executions(
    workflow_id: uuid.UUID,
    session: ReadSessionDep,
    status: Annotated[ExecutionStatus | None, Query()] = None,
    limit: Limit = 50,
    after: After = None,
) -> repository.Page[WorkflowExecution]:
    """List a workflow's runs, newest first, optionally of one status."""
    if not await Repository(session, Workflow).exists(Workflow.id == workflow_id):
        raise NotFound(f"workflow {workflow_id} does not exist")
    filters = [WorkflowExecution.workflow_id == workflow_id]
    if status is not None:
        filters.append(WorkflowExecution.status == status)
    return await Repository(session, WorkflowExecution).list(
        *filters, order="desc", limit=limit, after=after
    )
