"""Read-side queries over workflows and their runs.

They live here, not in ``apps.workflows``: executions depend on workflows (a run belongs
to a workflow), never the other way, so whatever reads both is on this side.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from apps.executions.models import WorkflowExecution
from apps.workflows.models import Edge, Node, Workflow
from project.db import session_scope


@dataclass(frozen=True)
class WorkflowSummary:
    """One workflow, counted: what ``manage.py workflows`` lists."""

    name: str
    trigger_type: str
    nodes: int
    edges: int
    last_status: str | None
    deleted: bool


async def workflow_summaries(*, include_deleted: bool = False) -> list[WorkflowSummary]:
    """Return every workflow with its node and edge counts and its latest run's status,
    in one query."""
    nodes = (
        select(func.count())
        .where(Node.workflow_id == Workflow.id, Node.deleted_at.is_(None))
        .scalar_subquery()
    )
    edges = (
        select(func.count())
        .where(Edge.workflow_id == Workflow.id, Edge.deleted_at.is_(None))
        .scalar_subquery()
    )
    last = (
        select(WorkflowExecution.status)
        .where(WorkflowExecution.workflow_id == Workflow.id)
        .order_by(WorkflowExecution.created_at.desc(), WorkflowExecution.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    statement = (
        select(Workflow.name, Workflow.trigger_type, nodes, edges, last, Workflow.deleted_at)
        .order_by(Workflow.name)
        .execution_options(include_deleted=include_deleted)
    )
    async with session_scope() as session:
        result = await session.execute(statement)
        return [
            WorkflowSummary(name, str(trigger), n, e, status, deleted_at is not None)
            for name, trigger, n, e, status, deleted_at in result.all()
        ]
