"""The model mixins (UUID key, timestamps, soft delete) and the async factories.

The models here live on their own declarative base, so they never reach the migration
metadata; their tables are created inside each test's transaction and vanish with it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import factory
import pytest
from sqlalchemy import ForeignKey, MetaData, String, event, func, select, text
from sqlalchemy import inspect as orm_inspect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    joinedload,
    mapped_column,
    relationship,
    selectinload,
)

from project import factories
from project.enums import ToolType
from project.exceptions import ProjectError
from project.factories import AsyncFactory, use_session
from project.models import (
    NAMING_CONVENTION,
    Base,
    SoftDeleteMixin,
    TimestampMixin,
    UUIDPrimaryKeyMixin,
)
from project.orm.types import EnumString, uuid7
from project.testing.sql import recorded_statements


class SampleBase(UUIDPrimaryKeyMixin, TimestampMixin, SoftDeleteMixin, DeclarativeBase):
    """A base like ``project.models.Base`` but with its own metadata (not migrated)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Parent(SampleBase):
    __tablename__ = "test_models_parent"

    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[ToolType] = mapped_column(EnumString(ToolType), default=ToolType.DATA_FETCHER)
    children: Mapped[list[Child]] = relationship(back_populates="parent", lazy="raise")


class Child(SampleBase):
    __tablename__ = "test_models_child"

    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("test_models_parent.id"))
    parent: Mapped[Parent] = relationship(back_populates="children", lazy="raise")


class ParentFactory(AsyncFactory[Parent]):
    class Meta:
        model = Parent

    name = factory.Sequence(lambda n: f"parent {n}")
    kind = ToolType.CODE_ANALYZER


class ChildFactory(AsyncFactory[Child]):
    class Meta:
        model = Child

    name = factory.Sequence(lambda n: f"child {n}")
    parent = factory.SubFactory(ParentFactory)


def _create_tables(session: Session) -> None:
    SampleBase.metadata.create_all(session.connection())


@pytest.fixture
async def session(db_session: AsyncSession) -> AsyncSession:
    """Return ``db_session`` with the sample tables created inside its transaction."""
    await db_session.run_sync(_create_tables)
    return db_session


@pytest.fixture
async def committed_tables(db_engine: AsyncEngine) -> AsyncIterator[None]:
    """Create the sample tables for real (visible to other connections); drop them after."""
    async with db_engine.begin() as connection:
        await connection.run_sync(SampleBase.metadata.create_all)
    try:
        yield
    finally:
        async with db_engine.begin() as connection:
            # Never hang behind a test's open transaction: fail instead.
            await connection.execute(text("SET LOCAL lock_timeout = '10s'"))
            await connection.run_sync(SampleBase.metadata.drop_all)


def _inserts(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("INSERT")]


def _selects(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("SELECT")]


async def _count_rows(session: AsyncSession, table: str) -> int:
    count = await session.scalar(text(f"SELECT count(*) FROM {table}"))
    assert isinstance(count, int)
    return count


# --- the base ------------------------------------------------------------------------------


def test_base_has_every_mixin_and_the_naming_convention() -> None:
    assert issubclass(Base, UUIDPrimaryKeyMixin)
    assert issubclass(Base, TimestampMixin)
    assert issubclass(Base, SoftDeleteMixin)
    assert Base.metadata.naming_convention == NAMING_CONVENTION
    assert "test_models_parent" not in Base.metadata.tables


def test_columns_come_in_a_stable_order() -> None:
    names = [column.name for column in Parent.__table__.columns]
    assert names == ["id", "name", "kind", "created_at", "updated_at", "deleted_at"]


async def test_constraints_are_named_by_the_convention(session: AsyncSession) -> None:
    rows = await session.execute(
        text(
            "SELECT conname FROM pg_constraint "
            "WHERE conrelid IN ('test_models_parent'::regclass, 'test_models_child'::regclass)"
        )
    )
    assert {row.conname for row in rows} == {
        "pk_test_models_parent",
        "pk_test_models_child",
        "fk_test_models_child_parent_id_test_models_parent",
    }


# --- timestamps ----------------------------------------------------------------------------


async def test_server_sets_timestamps_readable_right_after_flush(session: AsyncSession) -> None:
    parent = Parent(name="p")
    session.add(parent)
    await session.flush()

    # Plain attribute access in async code: a lazy load here would raise MissingGreenlet.
    assert orm_inspect(parent).expired_attributes == set()
    created_at, updated_at = parent.created_at, parent.updated_at
    assert created_at.tzinfo is not None
    assert created_at.utcoffset() is not None
    assert updated_at.tzinfo is not None
    # Set by the server (now() is the transaction's start), not by the client clock.
    assert created_at == await session.scalar(select(func.now()))
    assert updated_at == created_at
    assert parent.deleted_at is None


async def test_updated_at_moves_on_update_and_created_at_does_not(
    session: AsyncSession, db_engine: AsyncEngine
) -> None:
    parent = Parent(name="before")
    session.add(parent)
    await session.flush()
    created_at, first_updated_at = parent.created_at, parent.updated_at

    parent.name = "after"
    with recorded_statements(db_engine) as statements:
        await session.flush()

    # One UPDATE that returns the new updated_at: no SELECT, no lazy load afterwards.
    assert len(statements) == 1
    assert statements[0].lstrip().upper().startswith("UPDATE")
    assert "updated_at" not in orm_inspect(parent).expired_attributes
    second_updated_at = parent.updated_at
    assert second_updated_at > first_updated_at
    assert parent.created_at == created_at

    # A second update in the same transaction still moves it (statement time, not now()).
    parent.name = "again"
    await session.flush()
    assert parent.updated_at > second_updated_at
    stored = await session.scalar(
        text("SELECT updated_at FROM test_models_parent WHERE id = :id"), {"id": parent.id}
    )
    assert stored == parent.updated_at


# --- primary key ---------------------------------------------------------------------------


async def test_id_is_generated_client_side_as_uuid7(session: AsyncSession) -> None:
    parent = Parent(name="p")
    assert parent.id is None
    session.add(parent)
    await session.flush()

    assert isinstance(parent.id, uuid.UUID)
    assert parent.id.version == 7
    stored = await session.scalar(text("SELECT id FROM test_models_parent WHERE name = 'p'"))
    assert stored == parent.id


async def test_server_default_fills_id_for_raw_sql(session: AsyncSession) -> None:
    result = await session.execute(
        text(
            "INSERT INTO test_models_parent (name, kind) VALUES ('raw', 'notification') "
            "RETURNING id, created_at, updated_at, deleted_at"
        )
    )
    row = result.one()
    assert isinstance(row.id, uuid.UUID)
    assert row.id.version == 4  # gen_random_uuid()
    assert row.created_at is not None
    assert row.updated_at is not None
    assert row.deleted_at is None

    loaded = await session.scalar(select(Parent).where(Parent.id == row.id))
    assert loaded is not None
    assert loaded.kind is ToolType.NOTIFICATION


def test_uuid7_layout() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert before <= value.int >> 80 <= after
    assert len({uuid7() for _ in range(1000)}) == 1000


async def test_add_all_of_many_objects_is_batched(
    session: AsyncSession, db_engine: AsyncEngine
) -> None:
    parents = [Parent(name=f"p{i}") for i in range(2000)]
    session.add_all(parents)
    with recorded_statements(db_engine) as statements:
        await session.flush()

    inserts = _inserts(statements)
    assert 1 <= len(inserts) <= 4, f"{len(inserts)} INSERT statements"
    # The RETURNING rows were matched to the right objects.
    rows = await session.execute(text("SELECT name, id FROM test_models_parent"))
    stored = {row.name: row.id for row in rows}
    assert len(stored) == 2000
    assert stored == {parent.name: parent.id for parent in parents}
    assert all(parent.id.version == 7 for parent in parents)
    assert all(parent.created_at is not None for parent in parents)


async def test_factory_create_batch_is_batched(
    session: AsyncSession, db_engine: AsyncEngine
) -> None:
    with recorded_statements(db_engine) as statements:
        children = await ChildFactory.create_batch(1000)

    inserts = _inserts(statements)
    assert 1 <= len(inserts) <= 5, f"{len(inserts)} INSERT statements"
    assert len(children) == 1000
    assert await _count_rows(session, "test_models_child") == 1000
    assert await _count_rows(session, "test_models_parent") == 1000
    assert all(child.parent_id == child.parent.id for child in children)


# --- soft delete ---------------------------------------------------------------------------


async def _three_parents(session: AsyncSession) -> tuple[Parent, Parent, Parent]:
    kept, gone, also_kept = Parent(name="kept"), Parent(name="gone"), Parent(name="also kept")
    session.add_all([kept, gone, also_kept])
    await session.flush()
    gone.soft_delete()
    await session.flush()
    session.expunge_all()
    return kept, gone, also_kept


def test_soft_delete_and_restore_on_the_instance() -> None:
    parent = Parent(name="p")
    assert parent.is_deleted is False

    parent.soft_delete()
    deleted_at = parent.deleted_at
    assert parent.is_deleted is True
    assert deleted_at is not None
    assert deleted_at.tzinfo is not None
    assert abs(datetime.now(UTC) - deleted_at) < timedelta(seconds=5)

    parent.soft_delete()  # already deleted: keeps the first time
    assert parent.deleted_at == deleted_at

    parent.restore()
    assert parent.deleted_at is None
    assert parent.is_deleted is False


async def test_default_selects_hide_soft_deleted_rows(session: AsyncSession) -> None:
    await _three_parents(session)

    names = set(await session.scalars(select(Parent.name)))
    assert names == {"kept", "also kept"}
    objects = {parent.name for parent in await session.scalars(select(Parent))}
    assert objects == {"kept", "also kept"}
    # The row is still in the table.
    assert await _count_rows(session, "test_models_parent") == 3


async def test_include_deleted_opts_out(session: AsyncSession) -> None:
    _, gone, _ = await _three_parents(session)

    statement = select(Parent).execution_options(include_deleted=True)
    assert {p.name for p in await session.scalars(statement)} == {"kept", "gone", "also kept"}

    assert await session.get(Parent, gone.id) is None
    found = await session.get(Parent, gone.id, execution_options={"include_deleted": True})
    assert found is not None
    assert found.is_deleted is True


async def test_is_deleted_in_sql(session: AsyncSession) -> None:
    await _three_parents(session)

    deleted = select(Parent.name).where(Parent.is_deleted)
    assert list(await session.scalars(deleted.execution_options(include_deleted=True))) == ["gone"]
    # Without the opt-out the global filter wins: nothing is both deleted and visible.
    assert list(await session.scalars(deleted)) == []

    not_deleted = select(Parent.name).where(~Parent.is_deleted)
    names = set(await session.scalars(not_deleted.execution_options(include_deleted=True)))
    assert names == {"kept", "also kept"}


async def test_active_selects_rows_not_soft_deleted(session: AsyncSession) -> None:
    await _three_parents(session)

    # active() filters on its own, even where the global filter is switched off.
    statement = Parent.active().execution_options(include_deleted=True)
    assert {p.name for p in await session.scalars(statement)} == {"kept", "also kept"}
    assert {p.name for p in await session.scalars(Parent.active())} == {"kept", "also kept"}


async def test_soft_delete_is_stored_and_restore_brings_the_row_back(
    session: AsyncSession,
) -> None:
    parent = Parent(name="p")
    session.add(parent)
    await session.flush()

    parent.soft_delete()
    await session.flush()
    stored = await session.scalar(
        text("SELECT deleted_at FROM test_models_parent WHERE id = :id"), {"id": parent.id}
    )
    assert stored == parent.deleted_at
    assert await session.scalar(select(Parent).where(Parent.id == parent.id)) is None

    parent.restore()
    await session.flush()
    stored = await session.scalar(
        text("SELECT deleted_at FROM test_models_parent WHERE id = :id"), {"id": parent.id}
    )
    assert stored is None
    assert await session.scalar(select(Parent).where(Parent.id == parent.id)) is parent


async def _family(session: AsyncSession) -> uuid.UUID:
    parent = Parent(
        name="parent",
        children=[Child(name="a"), Child(name="b"), Child(name="gone")],
    )
    session.add(parent)
    await session.flush()
    gone = next(child for child in parent.children if child.name == "gone")
    gone.soft_delete()
    await session.flush()
    session.expunge_all()
    return parent.id


async def test_relationship_loads_hide_soft_deleted_children(session: AsyncSession) -> None:
    parent_id = await _family(session)

    for option in (selectinload(Parent.children), joinedload(Parent.children)):
        statement = select(Parent).where(Parent.id == parent_id).options(option)
        parent = (await session.scalars(statement)).unique().one()
        assert {child.name for child in parent.children} == {"a", "b"}
        session.expunge_all()

    assert await _count_rows(session, "test_models_child") == 3


async def test_relationship_loads_show_soft_deleted_children_on_opt_out(
    session: AsyncSession,
) -> None:
    parent_id = await _family(session)

    for option in (selectinload(Parent.children), joinedload(Parent.children)):
        statement = (
            select(Parent)
            .where(Parent.id == parent_id)
            .options(option)
            .execution_options(include_deleted=True)
        )
        parent = (await session.scalars(statement)).unique().one()
        assert {child.name for child in parent.children} == {"a", "b", "gone"}
        session.expunge_all()


async def test_any_ignores_soft_deleted_children(session: AsyncSession) -> None:
    only_deleted = Parent(name="only deleted", children=[Child(name="gone")])
    with_live = Parent(name="with live", children=[Child(name="live")])
    session.add_all([only_deleted, with_live])
    await session.flush()
    only_deleted.children[0].soft_delete()
    await session.flush()

    statement = select(Parent.name).where(Parent.children.any())
    assert list(await session.scalars(statement)) == ["with live"]


# --- factories -----------------------------------------------------------------------------


def test_build_touches_no_database_and_fills_no_managed_column() -> None:
    with pytest.raises(ProjectError):
        factories.current_session()  # no session anywhere: build must not need one

    parent = ParentFactory.build()
    assert isinstance(parent, Parent)
    assert orm_inspect(parent).transient
    assert parent.name.startswith("parent ")
    assert parent.kind is ToolType.CODE_ANALYZER
    assert parent.id is None
    assert parent.created_at is None
    assert parent.updated_at is None
    assert parent.deleted_at is None

    child = ChildFactory.build()
    assert orm_inspect(child).transient
    assert orm_inspect(child.parent).transient
    assert child.id is None
    assert child.parent.id is None


def test_build_fills_managed_columns_when_asked() -> None:
    key = uuid7()
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    parent = ParentFactory.build(id=key, created_at=when, updated_at=when, deleted_at=when)
    assert parent.id == key
    assert parent.created_at == when
    assert parent.updated_at == when
    assert parent.deleted_at == when


def test_soft_deleted_trait_sets_deleted_at() -> None:
    parent = ParentFactory.build(soft_deleted=True)
    assert parent.deleted_at is not None
    assert abs(datetime.now(UTC) - parent.deleted_at) < timedelta(seconds=5)
    assert parent.is_deleted is True
    assert ParentFactory.build(soft_deleted=False).deleted_at is None


def test_build_batch_returns_distinct_objects() -> None:
    parents = ParentFactory.build_batch(3, kind=ToolType.NOTIFICATION)
    assert len({parent.name for parent in parents}) == 3
    assert all(parent.kind is ToolType.NOTIFICATION for parent in parents)


async def test_create_flushes_through_db_session(session: AsyncSession) -> None:
    parent = await ParentFactory.create(name="made")

    assert parent in session
    assert orm_inspect(parent).persistent
    assert parent.id.version == 7
    assert parent.created_at is not None
    assert parent.deleted_at is None
    assert await session.scalar(select(Parent.name).where(Parent.id == parent.id)) == "made"


async def test_create_soft_deleted_is_hidden(session: AsyncSession) -> None:
    parent = await ParentFactory.create(soft_deleted=True)
    assert parent.deleted_at is not None
    assert await session.scalar(select(Parent).where(Parent.id == parent.id)) is None
    assert await _count_rows(session, "test_models_parent") == 1


async def test_create_never_commits(
    committed_tables: None, db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    commits: list[Session] = []

    def record(committed: Session) -> None:
        commits.append(committed)

    event.listen(db_session.sync_session, "after_commit", record)
    try:
        parent = await ParentFactory.create()
        children = await ChildFactory.create_batch(2)
    finally:
        event.remove(db_session.sync_session, "after_commit", record)

    assert commits == []
    assert db_session.in_transaction()
    ids = [parent.id, *(child.parent.id for child in children)]
    count = select(func.count()).select_from(Parent).where(Parent.id.in_(ids))
    assert await db_session.scalar(count) == 3
    async with db_engine.connect() as other:  # another connection sees nothing yet
        assert await other.scalar(count) == 0


async def test_create_without_a_session_raises() -> None:
    with pytest.raises(ProjectError, match="no session for factories"):
        await ParentFactory.create()
    with pytest.raises(ProjectError):
        await ParentFactory.create_batch(2)


async def test_create_with_an_explicit_session(
    committed_tables: None, db_engine: AsyncEngine
) -> None:
    async with AsyncSession(db_engine) as own:
        parent = await ParentFactory.create(_session=own, name="explicit")
        assert parent in own
        assert orm_inspect(parent).persistent
        assert own.in_transaction()
        assert await own.scalar(select(Parent.name).where(Parent.id == parent.id)) == "explicit"

        with use_session(own):
            batch = await ParentFactory.create_batch(2)
        assert all(item in own for item in batch)
        await own.rollback()

    async with db_engine.connect() as other:
        assert await other.scalar(select(func.count()).select_from(Parent)) == 0


async def test_explicit_session_wins_over_db_session(
    committed_tables: None, db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    async with AsyncSession(db_engine) as own:
        parent = await ParentFactory.create(_session=own)
        assert parent in own
        assert parent not in db_session
        await own.rollback()


async def test_bulk_update_and_delete_leave_soft_deleted_rows_alone(
    session: AsyncSession,
) -> None:
    from sqlalchemy import delete, update

    live, gone = Parent(name="live"), Parent(name="gone")
    session.add_all([live, gone])
    await session.flush()
    gone.soft_delete()
    await session.flush()
    await session.execute(update(Parent).values(name="renamed"))
    names = await session.scalars(
        text("SELECT name FROM test_models_parent ORDER BY deleted_at NULLS FIRST")
    )
    assert list(names) == ["renamed", "gone"]
    await session.execute(delete(Parent))
    assert await session.scalar(text("SELECT count(*) FROM test_models_parent")) == 1
    await session.execute(delete(Parent).execution_options(include_deleted=True))
    assert await session.scalar(text("SELECT count(*) FROM test_models_parent")) == 0
