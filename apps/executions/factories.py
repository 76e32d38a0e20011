"""Factories for the executions app."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import factory

from apps.executions.models import NodeExecution, WorkflowExecution
from apps.workflows.factories import NodeFactory, WorkflowFactory
from project.enums import ExecutionStatus
from project.factories import AsyncFactory


def _started() -> datetime:
    return datetime.now(UTC) - timedelta(minutes=5)


class WorkflowExecutionFactory(AsyncFactory[WorkflowExecution]):
    """A pending run; traits ``running``, ``completed`` and ``failed``."""

    class Meta:
        model = WorkflowExecution

    workflow = factory.SubFactory(WorkflowFactory)
    trigger_type = factory.SelfAttribute("workflow.trigger_type")
    status = ExecutionStatus.PENDING
    input = factory.LazyFunction(lambda: {"symbol": "BTC-USD", "interval": "1m"})

    class Params:
        running = factory.Trait(
            status=ExecutionStatus.RUNNING, started_at=factory.LazyFunction(_started)
        )
        completed = factory.Trait(
            status=ExecutionStatus.COMPLETED,
            started_at=factory.LazyFunction(_started),
            finished_at=factory.LazyAttribute(lambda run: run.started_at + timedelta(seconds=42)),
            output=factory.LazyFunction(lambda: {"signal": "buy", "score": 0.82}),
        )
        failed = factory.Trait(
            status=ExecutionStatus.FAILED,
            started_at=factory.LazyFunction(_started),
            finished_at=factory.LazyAttribute(lambda run: run.started_at + timedelta(seconds=3)),
            error="TimeoutError: market data feed did not answer within 3 s",
        )


class NodeExecutionFactory(AsyncFactory[NodeExecution]):
    """A node's run within a workflow run, on a node of the same workflow."""

    class Meta:
        model = NodeExecution

    workflow_execution = factory.SubFactory(WorkflowExecutionFactory)
    node = factory.SubFactory(
        NodeFactory, workflow=factory.SelfAttribute("..workflow_execution.workflow")
    )
    status = ExecutionStatus.COMPLETED
    started_at = factory.LazyFunction(_started)
    finished_at = factory.LazyAttribute(lambda run: run.started_at + timedelta(seconds=1))
    input = factory.LazyFunction(lambda: {"price": 64_250.5})
    output = factory.LazyFunction(lambda: {"ok": True})
    retry_count = 0

    class Params:
        failed = factory.Trait(
            status=ExecutionStatus.FAILED,
            error="ValueError: indicator period must be positive",
            output=None,
            retry_count=3,
        )
