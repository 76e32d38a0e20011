"""The recorded runs: ``WorkflowExecution`` and its ``NodeExecution`` rows."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from apps.workflows.models import Node, Workflow
from project.enums import ExecutionStatus, TriggerType
from project.models import Base
from project.orm.types import EnumString

_FINISHED_AFTER_START = "finished_at IS NULL OR started_at IS NULL OR finished_at >= started_at"


class RunMixin:
    """What every recorded run has: its status, when it ran, what went in and out."""

    status: Mapped[ExecutionStatus] = mapped_column(
        EnumString(ExecutionStatus),
        default=ExecutionStatus.PENDING,
        server_default=ExecutionStatus.PENDING.value,
    )
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    input: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    # none_as_null: no output is SQL NULL, not the JSON value null.
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True), default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)


class WorkflowExecution(RunMixin, Base):
    """One run of a workflow."""

    __tablename__ = "workflow_executions"
    __table_args__ = (
        # "The latest runs of this workflow" and "what is running/failed now".
        Index(
            "ix_workflow_executions_workflow_id_created_at", "workflow_id", text("created_at DESC")
        ),
        Index("ix_workflow_executions_status_created_at", "status", text("created_at DESC")),
        CheckConstraint(_FINISHED_AFTER_START, name="finished_after_start"),
    )

    # RESTRICT: execution history is never deleted behind the user's back.
    workflow_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workflows.id", ondelete="RESTRICT"))
    trigger_type: Mapped[TriggerType] = mapped_column(EnumString(TriggerType))

    workflow: Mapped[Workflow] = relationship(lazy="raise")
    node_executions: Mapped[list[NodeExecution]] = relationship(
        back_populates="workflow_execution",
        lazy="raise",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="NodeExecution.created_at, NodeExecution.id",
    )


class NodeExecution(RunMixin, Base):
    """One node's part in a workflow run, with its retries."""

    __tablename__ = "node_executions"
    __table_args__ = (
        Index("ix_node_executions_workflow_execution_id", "workflow_execution_id"),
        Index("ix_node_executions_node_id", "node_id"),
        Index("ix_node_executions_status", "status"),
        CheckConstraint("retry_count >= 0", name="retry_count_not_negative"),
        CheckConstraint(_FINISHED_AFTER_START, name="finished_after_start"),
    )

    workflow_execution_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workflow_executions.id", ondelete="CASCADE")
    )
    node_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("nodes.id", ondelete="RESTRICT"))
    retry_count: Mapped[int] = mapped_column(default=0, server_default="0")

    workflow_execution: Mapped[WorkflowExecution] = relationship(
        back_populates="node_executions", lazy="raise"
    )
    node: Mapped[Node] = relationship(lazy="raise")
