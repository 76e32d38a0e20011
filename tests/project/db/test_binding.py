"""``bind_to()`` and ``use_session()`` belong to a contextvars context: concurrent tasks
(requests, tests, a shell's inputs) each see only their own."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from apps.tools.factories import ToolFactory
from apps.tools.models import Tool
from project import db
from project.db.session import bound_connection
from project.exceptions import ProjectError


async def test_concurrent_tasks_see_only_their_own_session_and_connection(
    db_engine: AsyncEngine,
) -> None:
    both_inside = asyncio.Barrier(2)

    async def work(name: str) -> tuple[str, ...]:
        async with db_engine.connect() as connection:
            transaction = await connection.begin()
            with db.bind_to(connection):
                session = db.async_session()
                with db.use_session(session):
                    await both_inside.wait()  # the other task is inside its blocks too
                    assert bound_connection() is connection
                    assert db.current_session() is session
                    assert db.async_session().bind is connection
                    await ToolFactory.create(name=name)
                    await both_inside.wait()  # both rows are written, neither committed
                    # What this task's sessions see: its own connection's transaction.
                    async with db.session_scope() as joined:
                        names = tuple(await joined.scalars(select(Tool.name)))
                    async with db.session_scope(read_only=True) as reader:
                        assert tuple(await reader.scalars(select(Tool.name))) == names
            await transaction.rollback()
            await session.close()
        return names

    seen = await asyncio.gather(work("first"), work("second"))
    assert list(seen) == [("first",), ("second",)]
    assert bound_connection() is None
    with pytest.raises(ProjectError, match="no session for factories"):
        db.current_session()
    async with db.session_scope() as session:  # both were rolled back
        assert await session.scalar(select(func.count()).select_from(Tool)) == 0


async def test_a_task_started_inside_the_block_inherits_it_and_nested_blocks_restore(
    db_engine: AsyncEngine,
) -> None:
    async with db_engine.connect() as outer, db_engine.connect() as inner:
        with db.bind_to(outer):
            assert await asyncio.create_task(_bound()) is outer
            with db.bind_to(inner):
                assert bound_connection() is inner
                assert await asyncio.create_task(_bound()) is inner
            assert bound_connection() is outer
        assert bound_connection() is None
        assert await asyncio.create_task(_bound()) is None


async def _bound() -> object:
    return bound_connection()


async def test_a_session_made_outside_a_block_takes_the_engine_at_its_first_query(
    db_engine: AsyncEngine,
) -> None:
    await db.dispose()
    session = db.async_session()
    assert db.session._state.engine is None  # making it created and connected nothing
    try:
        assert await session.scalar(select(1)) == 1
        engine = db.get_engine()
        assert session.get_bind() is engine.sync_engine
        await db.dispose()
        assert session.get_bind() is engine.sync_engine  # it keeps the engine it took
    finally:
        await session.close()


async def test_the_test_sees_what_its_async_fixture_bound(db_session: object) -> None:
    # db_session's bind_to() and use_session() ran in the fixture: the test shares its
    # context (project.testing.loop).
    assert db.current_session() is db_session
    assert bound_connection() is not None


async def test_a_session_class_of_its_own_is_bound_to_the_engine_at_once(
    db_engine: AsyncEngine,
) -> None:
    from sqlalchemy.orm import Session

    session = db.async_session(sync_session_class=Session)
    try:
        assert session.bind is db.get_engine()
        assert await session.scalar(select(1)) == 1
    finally:
        await session.close()
