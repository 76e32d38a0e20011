"""No lost updates with 20 concurrent request-style writers, through both patterns."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from apps.tools.models import Tool
from apps.workflows.models import Workflow
from project import db
from project.db.concurrency import (
    ConflictError,
    get_for_update,
    is_retryable,
    retry_transaction,
)
from project.enums import ToolType, TriggerType

WRITERS = 20


async def make_tool() -> uuid.UUID:
    async with db.session_scope() as session:
        tool = Tool(name="counter", tool_type=ToolType.NOTIFICATION, config={"n": 0})
        session.add(tool)
    return tool.id


async def make_workflow() -> uuid.UUID:
    async with db.session_scope() as session:
        workflow = Workflow(name="shared", trigger_type=TriggerType.MANUAL, trigger_config={"n": 0})
        session.add(workflow)
    return workflow.id


async def test_naive_read_modify_write_loses_updates(transactional_db: AsyncEngine) -> None:
    tool_id = await make_tool()

    async def naive() -> None:
        async with db.session_scope() as session:
            tool = (await session.scalars(select(Tool).where(Tool.id == tool_id))).one()
            count = tool.config["n"]
            await asyncio.sleep(0.01)  # the request does other work meanwhile
            tool.config = {"n": count + 1}

    await asyncio.gather(*(naive() for _ in range(WRITERS)))
    async with db.session_scope() as session:
        final = await session.scalar(text("SELECT config->>'n' FROM tools"))
    assert int(final) < WRITERS  # the race this module's helpers exist to prevent


async def test_select_for_update_loses_nothing(transactional_db: AsyncEngine) -> None:
    tool_id = await make_tool()

    async def locked(session: AsyncSession) -> None:
        tool = await get_for_update(session, Tool, tool_id)
        assert tool is not None
        count = tool.config["n"]
        await asyncio.sleep(0.005)
        tool.config = {"n": count + 1}

    await asyncio.gather(*(retry_transaction(locked) for _ in range(WRITERS)))
    async with db.session_scope() as session:
        assert await session.scalar(text("SELECT config->>'n' FROM tools")) == str(WRITERS)


async def test_optimistic_version_retries_lose_nothing(transactional_db: AsyncEngine) -> None:
    workflow_id = await make_workflow()
    attempts = 0

    async def optimistic(session: AsyncSession) -> None:
        nonlocal attempts
        attempts += 1
        workflow = (
            await session.scalars(
                select(Workflow)
                .where(Workflow.id == workflow_id)
                .execution_options(populate_existing=True)
            )
        ).one()
        count = workflow.trigger_config["n"]
        await asyncio.sleep(0.005)
        workflow.trigger_config = {"n": count + 1}

    await asyncio.gather(*(retry_transaction(optimistic, attempts=100) for _ in range(WRITERS)))
    async with db.session_scope() as session:
        row = (
            await session.execute(text("SELECT trigger_config->>'n', version FROM workflows"))
        ).one()
    assert row == (str(WRITERS), WRITERS + 1)
    assert attempts > WRITERS  # conflicts happened and were retried


async def test_stale_version_raises_and_gives_up(transactional_db: AsyncEngine) -> None:
    workflow_id = await make_workflow()

    async def always_stale(session: AsyncSession) -> None:
        workflow = (await session.scalars(select(Workflow).where(Workflow.id == workflow_id))).one()
        async with db.session_scope() as other:  # a concurrent writer wins every time
            await other.execute(text("UPDATE workflows SET version = version + 1"))
        workflow.name = "mine"

    with pytest.raises(ConflictError, match="gave up after 3"):
        await retry_transaction(always_stale, attempts=3, backoff=0)


async def test_other_errors_are_not_retried(transactional_db: AsyncEngine) -> None:
    calls = 0

    async def broken(session: AsyncSession) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        await retry_transaction(broken)
    assert calls == 1
    assert is_retryable(StaleDataError("x"))
    assert not is_retryable(RuntimeError("x"))


async def test_nowait_lock_conflict_is_retryable(transactional_db: AsyncEngine) -> None:
    tool_id = await make_tool()
    async with db.session_scope() as holder:
        assert await get_for_update(holder, Tool, tool_id) is not None
        with pytest.raises(DBAPIError, match="could not obtain lock") as caught:
            async with db.session_scope() as other:
                await get_for_update(other, Tool, tool_id, nowait=True)
        assert is_retryable(caught.value)
