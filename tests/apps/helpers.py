"""Shared helpers for the domain apps' tests: constraint violations, row counts, SQL logs."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from project.factories import AsyncFactory
from project.testing.sql import recorded_statements


@asynccontextmanager
async def violates(session: AsyncSession, constraint: str) -> AsyncIterator[None]:
    """Expect the block (and a flush after it) to break ``constraint`` in the database.

    ``constraint`` is a regular expression searched in the error. The block runs in a
    savepoint that is rolled back, so the test's transaction stays usable afterwards.
    """
    try:
        async with session.begin_nested():
            yield
            await session.flush()
    except IntegrityError as error:
        if not re.search(constraint, str(error.orig)):
            pytest.fail(f"expected a violation of {constraint}, got: {error.orig}")
    else:
        pytest.fail(f"no IntegrityError: {constraint} was not violated")


async def count_rows(session: AsyncSession, sql: str, **params: Any) -> int:
    """Return the ``count(*)`` of a raw SQL query (no ORM filter applies)."""
    count = await session.scalar(text(sql), params)
    assert isinstance(count, int)
    return count


async def created_rows(session: AsyncSession, factory: type[AsyncFactory[Any]]) -> int:
    """Create one object with ``factory``; return how many rows in its table carry its id."""
    created = await factory.create()
    table = type(created).__tablename__
    return await count_rows(session, f"SELECT count(*) FROM {table} WHERE id = :id", id=created.id)


def selects(statements: list[str]) -> list[str]:
    """Return the SELECT statements among ``statements``."""
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


def writes(statements: list[str], table: str) -> list[str]:
    """Return the INSERT/UPDATE/DELETE statements on ``table`` among ``statements``."""
    verbs = (f"INSERT INTO {table} ", f"UPDATE {table} ", f"DELETE FROM {table} ")
    return [s for s in statements if s.lstrip().startswith(verbs)]


async def assert_enum_rejected(
    session: AsyncSession, engine: AsyncEngine, obj: object, enum_name: str, table: str
) -> None:
    """Expect flushing ``obj`` to fail on an invalid enum value before any write to ``table``.

    The value is checked when it is bound, so no INSERT reaches the database.
    """
    with (
        recorded_statements(engine) as statements,
        pytest.raises(StatementError, match=enum_name) as caught,
    ):
        await _add_in_savepoint(session, obj)
    assert isinstance(caught.value.orig, ValueError)
    assert not isinstance(caught.value, IntegrityError)
    assert writes(statements, table) == []


async def _add_in_savepoint(session: AsyncSession, obj: object) -> None:
    async with session.begin_nested():
        session.add(obj)
        await session.flush()
