"""pytest-alembic's built-in checks on our history, through ``migrations/env.py``.

pytest-alembic hands ``env.py`` an ``AsyncEngine`` (its way for async projects); the
plain ``Connection`` (``manage.py``) and ``AsyncConnection`` ways are tested here too.
Its plugin is blocked in ``addopts`` (its import would load Alembic and SQLAlchemy into
the xdist controller), so this module builds the runner through its public ``runner()``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pytest_alembic import MigrationContext, runner
from pytest_alembic.config import Config as AlembicTestConfig
from pytest_alembic.tests.default import (
    test_model_definitions_match_ddl,
    test_single_head_revision,
    test_up_down_consistency,
    test_upgrade,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from project.db.url import DatabaseURL
from project.migrate.config import alembic_config, script_directory
from project.testing import loop

__all__ = [
    "test_model_definitions_match_ddl",
    "test_single_head_revision",
    "test_up_down_consistency",
    "test_upgrade",
]


@pytest.fixture
def alembic_engine(scratch_db: DatabaseURL) -> Iterator[AsyncEngine]:
    """Return an AsyncEngine on an empty database, as pytest-alembic's docs advise."""
    engine = create_async_engine(scratch_db.to_sqlalchemy(), poolclass=NullPool)
    yield engine
    loop.run(engine.dispose())


@pytest.fixture
def alembic_runner(alembic_engine: AsyncEngine) -> Iterator[MigrationContext]:
    """Return pytest-alembic's runner on the project's Alembic configuration."""
    config = AlembicTestConfig.from_raw_config(alembic_config())
    # Typed for sync engines only; its executor runs an AsyncEngine under asyncio.run.
    with runner(config=config, engine=alembic_engine) as context:  # type: ignore[arg-type]
        yield context


def _versions(engine: AsyncEngine) -> list[str]:
    async def read() -> list[str]:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT version_num FROM alembic_version"))
            return [row[0] for row in rows]

    return asyncio.run(read())


def _upgrade_with(shared: object) -> None:
    from alembic import command

    config = alembic_config()
    config.attributes["connection"] = shared
    command.upgrade(config, "head")


def test_env_runs_on_an_async_connection_from_run_sync(alembic_engine: AsyncEngine) -> None:
    async def main() -> None:
        async with alembic_engine.connect() as connection:
            await connection.run_sync(lambda _sync: _upgrade_with(connection))
            await connection.commit()

    asyncio.run(main())
    assert _versions(alembic_engine) == [script_directory().get_heads()[0]]


def test_env_runs_on_an_async_connection_without_a_running_loop(
    alembic_engine: AsyncEngine,
) -> None:
    # An AsyncConnection that is not started yet belongs to no loop: env.py starts it.
    _upgrade_with(alembic_engine.connect())
    assert _versions(alembic_engine) == [script_directory().get_heads()[0]]


def test_env_refuses_anything_else_in_one_line() -> None:
    with pytest.raises(
        TypeError, match="must be a Connection, an AsyncConnection or an AsyncEngine"
    ):
        _upgrade_with("postgresql://nowhere/db")
