"""Workflow and node executions against PostgreSQL: their factories and traits, CHECK
constraints, RESTRICT and CASCADE deletes, JSONB output, and the domain enums' columns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import selectinload

from apps.executions.factories import NodeExecutionFactory, WorkflowExecutionFactory
from apps.executions.models import NodeExecution, WorkflowExecution
from apps.workflows.factories import NodeFactory, WorkflowFactory
from apps.workflows.models import Workflow
from project import enums
from project.enums import ExecutionStatus, TriggerType
from project.factories import AsyncFactory
from project.models import Base
from project.orm.types import EnumString
from tests.apps.helpers import assert_enum_rejected, count_rows, created_rows, violates

RUNS_OF = "SELECT count(*) FROM node_executions WHERE workflow_execution_id = :id"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


# --- factories -------------------------------------------------------------------------------


def test_workflow_execution_factory_builds_without_database() -> None:
    run = WorkflowExecutionFactory.build()
    assert inspect(run).transient
    assert run.status is ExecutionStatus.PENDING
    assert run.trigger_type is run.workflow.trigger_type
    assert run.started_at is None
    assert run.finished_at is None


def test_node_execution_factory_builds_on_a_node_of_the_runs_workflow() -> None:
    node_run = NodeExecutionFactory.build()
    assert inspect(node_run).transient
    assert node_run.node.workflow is node_run.workflow_execution.workflow
    assert node_run.started_at is not None
    assert node_run.finished_at is not None
    assert node_run.finished_at >= node_run.started_at


@pytest.mark.parametrize("factory", [WorkflowExecutionFactory, NodeExecutionFactory])
async def test_factories_create_rows(
    db_session: AsyncSession, factory: type[AsyncFactory[Any]]
) -> None:
    assert await created_rows(db_session, factory) == 1


async def test_node_execution_factory_creates_a_consistent_run(db_session: AsyncSession) -> None:
    node_run = await NodeExecutionFactory.create()
    workflows = (
        await db_session.execute(
            text(
                "SELECT r.workflow_id, n.workflow_id FROM node_executions ne "
                "JOIN workflow_executions r ON r.id = ne.workflow_execution_id "
                "JOIN nodes n ON n.id = ne.node_id WHERE ne.id = :id"
            ),
            {"id": node_run.id},
        )
    ).one()
    assert workflows[0] == workflows[1]


@pytest.mark.parametrize("factory", [WorkflowExecutionFactory, NodeExecutionFactory])
async def test_soft_deleted_trait(
    db_session: AsyncSession, factory: type[AsyncFactory[Any]]
) -> None:
    created = await factory.create(soft_deleted=True)
    model = type(created)
    assert created.is_deleted is True
    assert await db_session.scalar(select(model).where(model.id == created.id)) is None


async def test_running_trait(db_session: AsyncSession) -> None:
    run = await WorkflowExecutionFactory.create(running=True)
    assert run.status is ExecutionStatus.RUNNING
    assert run.started_at is not None
    assert run.finished_at is None
    assert run.output is None
    assert run.error is None


async def test_completed_trait(db_session: AsyncSession) -> None:
    run = await WorkflowExecutionFactory.create(completed=True)
    assert run.status is ExecutionStatus.COMPLETED
    assert run.started_at is not None
    assert run.finished_at is not None
    assert run.finished_at > run.started_at
    assert run.output == {"signal": "buy", "score": 0.82}
    assert run.error is None
    stored = await db_session.scalar(
        text("SELECT status FROM workflow_executions WHERE id = :id"), {"id": run.id}
    )
    assert stored == "completed"


async def test_failed_trait(db_session: AsyncSession) -> None:
    run = await WorkflowExecutionFactory.create(failed=True)
    assert run.status is ExecutionStatus.FAILED
    assert run.started_at is not None
    assert run.finished_at is not None
    assert run.finished_at > run.started_at
    assert run.error
    assert run.output is None


async def test_node_execution_failed_trait(db_session: AsyncSession) -> None:
    node_run = await NodeExecutionFactory.create(failed=True)
    assert node_run.status is ExecutionStatus.FAILED
    assert node_run.retry_count == 3
    assert node_run.error
    assert node_run.output is None
    row = (
        await db_session.execute(
            text("SELECT status, retry_count, output IS NULL FROM node_executions WHERE id = :id"),
            {"id": node_run.id},
        )
    ).one()
    assert tuple(row) == ("failed", 3, True)


# --- enums ---------------------------------------------------------------------------------


async def test_invalid_status_is_rejected(db_session: AsyncSession, db_engine: AsyncEngine) -> None:
    run = WorkflowExecutionFactory.build(status="exploded")
    await assert_enum_rejected(db_session, db_engine, run, "ExecutionStatus", "workflow_executions")


async def test_invalid_trigger_type_is_rejected(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    run = WorkflowExecutionFactory.build(trigger_type="webhook")
    await assert_enum_rejected(db_session, db_engine, run, "TriggerType", "workflow_executions")


async def test_invalid_node_status_is_rejected(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    node_run = NodeExecutionFactory.build(status="done")
    await assert_enum_rejected(
        db_session, db_engine, node_run, "ExecutionStatus", "node_executions"
    )


async def test_status_defaults_to_pending(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create()
    await db_session.execute(
        text("INSERT INTO workflow_executions (workflow_id, trigger_type) VALUES (:id, 'manual')"),
        {"id": workflow.id},
    )
    run = await db_session.scalar(
        select(WorkflowExecution).where(WorkflowExecution.workflow_id == workflow.id)
    )
    assert run is not None
    assert run.status is ExecutionStatus.PENDING
    assert run.trigger_type is TriggerType.MANUAL
    assert run.input == {}
    assert run.output is None


def test_every_domain_enum_is_used_by_a_column() -> None:
    used = {
        column.type.enum_class
        for table in Base.metadata.tables.values()
        for column in table.columns
        if isinstance(column.type, EnumString)
    }
    domain = {
        enums.NodeType,
        enums.ToolType,
        enums.ModelProvider,
        enums.ExecutionStatus,
        enums.AuthMode,
        enums.TriggerType,
    }
    assert used == domain


# --- CHECK constraints -----------------------------------------------------------------------


async def test_a_run_cannot_finish_before_it_starts(db_session: AsyncSession) -> None:
    async with violates(db_session, "ck_workflow_executions_finished_after_start"):
        await WorkflowExecutionFactory.create(
            started_at=NOW, finished_at=NOW - timedelta(seconds=1)
        )


async def test_a_run_may_finish_when_it_starts_or_without_a_start(
    db_session: AsyncSession,
) -> None:
    await WorkflowExecutionFactory.create(started_at=NOW, finished_at=NOW)
    await WorkflowExecutionFactory.create(started_at=None, finished_at=NOW)
    await NodeExecutionFactory.create(started_at=NOW, finished_at=NOW)
    await NodeExecutionFactory.create(started_at=NOW, finished_at=None)


async def test_a_run_cannot_be_moved_to_finish_before_it_starts(db_session: AsyncSession) -> None:
    run = await WorkflowExecutionFactory.create(completed=True)
    assert run.started_at is not None
    async with violates(db_session, "ck_workflow_executions_finished_after_start"):
        run.finished_at = run.started_at - timedelta(microseconds=1)


async def test_a_node_run_cannot_finish_before_it_starts(db_session: AsyncSession) -> None:
    async with violates(db_session, "ck_node_executions_finished_after_start"):
        await NodeExecutionFactory.create(started_at=NOW, finished_at=NOW - timedelta(hours=1))


async def test_retry_count_is_not_negative(db_session: AsyncSession) -> None:
    async with violates(db_session, "ck_node_executions_retry_count_not_negative"):
        await NodeExecutionFactory.create(retry_count=-1)
    node_run = await NodeExecutionFactory.create(retry_count=0)
    async with violates(db_session, "ck_node_executions_retry_count_not_negative"):
        node_run.retry_count = -5


# --- deleting for real -------------------------------------------------------------------------


async def test_deleting_a_workflow_with_executions_is_restricted(db_session: AsyncSession) -> None:
    run = await WorkflowExecutionFactory.create(completed=True)
    workflow_id = run.workflow_id
    db_session.expunge_all()
    workflow = await db_session.get(Workflow, workflow_id)
    assert workflow is not None

    async with violates(db_session, "fk_workflow_executions_workflow_id_workflows"):
        await db_session.delete(workflow)

    async with violates(db_session, "fk_workflow_executions_workflow_id_workflows"):
        await db_session.execute(text("DELETE FROM workflows WHERE id = :id"), {"id": workflow_id})

    workflows = "SELECT count(*) FROM workflows WHERE id = :id"
    assert await count_rows(db_session, workflows, id=workflow_id) == 1


async def test_deleting_a_workflow_whose_graph_ran_is_restricted(db_session: AsyncSession) -> None:
    node_run = await NodeExecutionFactory.create()
    workflow_id = node_run.node.workflow_id
    async with violates(
        db_session,
        "fk_workflow_executions_workflow_id_workflows|fk_node_executions_node_id_nodes",
    ):
        await db_session.execute(text("DELETE FROM workflows WHERE id = :id"), {"id": workflow_id})


async def test_deleting_a_node_that_ran_is_restricted(db_session: AsyncSession) -> None:
    node_run = await NodeExecutionFactory.create()
    async with violates(db_session, "fk_node_executions_node_id_nodes"):
        await db_session.delete(node_run.node)


async def test_deleting_a_workflow_after_its_executions_works(db_session: AsyncSession) -> None:
    run = await WorkflowExecutionFactory.create(workflow=WorkflowFactory.build(with_graph=True))
    workflow_id = run.workflow_id
    await db_session.delete(run)
    await db_session.flush()
    await db_session.execute(text("DELETE FROM workflows WHERE id = :id"), {"id": workflow_id})
    nodes = "SELECT count(*) FROM nodes WHERE workflow_id = :id"
    assert await count_rows(db_session, nodes, id=workflow_id) == 0


@pytest.mark.parametrize("runs_loaded", [True, False], ids=["runs loaded", "runs not loaded"])
async def test_deleting_a_workflow_execution_deletes_its_node_executions(
    db_session: AsyncSession, runs_loaded: bool
) -> None:
    run = await WorkflowExecutionFactory.create(completed=True)
    await NodeExecutionFactory.create_batch(3, workflow_execution=run)
    other = await NodeExecutionFactory.create()
    assert await count_rows(db_session, RUNS_OF, id=run.id) == 3
    run_id = run.id
    db_session.expunge_all()
    statement = select(WorkflowExecution).where(WorkflowExecution.id == run_id)
    if runs_loaded:
        statement = statement.options(selectinload(WorkflowExecution.node_executions))
    loaded = (await db_session.scalars(statement)).one()

    await db_session.delete(loaded)
    await db_session.flush()

    assert await count_rows(db_session, RUNS_OF, id=run_id) == 0
    runs = "SELECT count(*) FROM workflow_executions WHERE id = :id"
    assert await count_rows(db_session, runs, id=run_id) == 0
    assert await count_rows(db_session, RUNS_OF, id=other.workflow_execution_id) == 1
    # The nodes the runs recorded stay.
    nodes = "SELECT count(*) FROM nodes WHERE workflow_id = :id"
    assert await count_rows(db_session, nodes, id=run.workflow_id) == 3


# --- JSONB ---------------------------------------------------------------------------------


async def test_node_execution_output_round_trips(db_session: AsyncSession) -> None:
    output: dict[str, Any] = {
        "signal": "sell",
        "indicators": {"rsi": 71.5, "macd": [0.12, -0.03, None]},
        "notes": ["überkauft", "買われ過ぎ", "🚨"],
        "meta": {"cached": False, "source": None, "depth": {"a": {"b": {"c": [1, [2, [3]]]}}}},
    }
    node_run = await NodeExecutionFactory.create(output=output, input={"price": None})
    db_session.expunge_all()
    loaded = await db_session.get(NodeExecution, node_run.id)
    assert loaded is not None
    assert loaded.output == output
    assert loaded.input == {"price": None}

    row = (
        await db_session.execute(
            text(
                "SELECT output->>'signal', output #>> '{notes,2}', "
                "(output #> '{indicators,rsi}')::float, "
                "jsonb_typeof(output #> '{indicators,macd,2}'), "
                "output #> '{meta,depth,a,b,c,1,1,0}', "
                "jsonb_typeof(input->'price') "
                "FROM node_executions WHERE id = :id"
            ),
            {"id": node_run.id},
        )
    ).one()
    assert tuple(row) == ("sell", "🚨", 71.5, "null", 3, "null")


async def test_no_output_is_sql_null(db_session: AsyncSession) -> None:
    node_run = await NodeExecutionFactory.create(output=None)
    run = await WorkflowExecutionFactory.create(output=None)
    assert await count_rows(
        db_session,
        "SELECT count(*) FROM node_executions WHERE id = :id AND output IS NULL",
        id=node_run.id,
    )
    assert await count_rows(
        db_session,
        "SELECT count(*) FROM workflow_executions WHERE id = :id AND output IS NULL",
        id=run.id,
    )
    found = await db_session.scalars(
        select(NodeExecution.id).where(
            NodeExecution.output.is_(None), NodeExecution.id == node_run.id
        )
    )
    assert list(found) == [node_run.id]
    db_session.expunge_all()
    loaded = await db_session.get(NodeExecution, node_run.id)
    assert loaded is not None
    assert loaded.output is None


async def test_output_set_later_is_saved(db_session: AsyncSession) -> None:
    run = await WorkflowExecutionFactory.create(running=True)
    run.status = ExecutionStatus.COMPLETED
    run.finished_at = datetime.now(UTC)
    run.output = {"orders": [{"side": "buy", "qty": 0.5}]}
    await db_session.flush()
    stored = await db_session.scalar(
        text("SELECT output #>> '{orders,0,side}' FROM workflow_executions WHERE id = :id"),
        {"id": run.id},
    )
    assert stored == "buy"


# --- lazy="raise" and eager loading ----------------------------------------------------------


async def test_unloaded_relationships_raise_instead_of_loading(db_session: AsyncSession) -> None:
    node_run = await NodeExecutionFactory.create()
    run_id = node_run.workflow_execution_id
    db_session.expunge_all()
    run = await db_session.get(WorkflowExecution, run_id)
    assert run is not None
    loaded_node_run = await db_session.get(NodeExecution, node_run.id)
    assert loaded_node_run is not None

    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = run.node_executions
    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = run.workflow
    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = loaded_node_run.node
    with pytest.raises(InvalidRequestError, match="lazy='raise'"):
        _ = loaded_node_run.workflow_execution


async def test_node_executions_load_eagerly_in_a_stable_order(db_session: AsyncSession) -> None:
    run = await WorkflowExecutionFactory.create(running=True)
    node = await NodeFactory.create(workflow=run.workflow)
    for retry in range(3):
        await NodeExecutionFactory.create(workflow_execution=run, node=node, retry_count=retry)
    db_session.expunge_all()

    statement = (
        select(WorkflowExecution)
        .where(WorkflowExecution.id == run.id)
        .options(selectinload(WorkflowExecution.node_executions))
    )
    loaded = (await db_session.scalars(statement)).one()
    assert sorted(node_run.retry_count for node_run in loaded.node_executions) == [0, 1, 2]
    keys = [(node_run.created_at, node_run.id) for node_run in loaded.node_executions]
    assert keys == sorted(keys)
