"""The domain enums and their storage as VARCHAR(50) through ``EnumString``."""

from __future__ import annotations

import uuid
from enum import StrEnum

import pytest
from sqlalchemy import MetaData, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from project.enums import AuthMode, ExecutionStatus, ModelProvider, NodeType, ToolType, TriggerType
from project.models import NAMING_CONVENTION, UUIDPrimaryKeyMixin
from project.orm.types import ENUM_LENGTH, EnumString
from project.testing.sql import recorded_statements

EXPECTED: dict[type[StrEnum], list[str]] = {
    NodeType: ["trigger", "tool", "agent", "condition", "adapter", "parallel", "aggregator"],
    ToolType: [
        "data_fetcher",
        "technical_indicator",
        "market_screener",
        "code_analyzer",
        "notification",
    ],
    ModelProvider: ["anthropic", "openai", "glm"],
    ExecutionStatus: ["pending", "running", "completed", "failed", "skipped", "cancelled"],
    AuthMode: ["oauth", "standalone", "sdk", "glm"],
    TriggerType: ["schedule", "event", "manual"],
}
ENUMS = list(EXPECTED)
COLUMNS: dict[type[StrEnum], str] = {
    NodeType: "node_type",
    ToolType: "tool_type",
    ModelProvider: "model_provider",
    ExecutionStatus: "execution_status",
    AuthMode: "auth_mode",
    TriggerType: "trigger_type",
}


class EnumSampleBase(UUIDPrimaryKeyMixin, DeclarativeBase):
    """A base of its own, so the sample table never reaches the migration metadata."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class EnumSample(EnumSampleBase):
    __tablename__ = "test_enums_sample"

    node_type: Mapped[NodeType | None] = mapped_column(EnumString(NodeType))
    tool_type: Mapped[ToolType | None] = mapped_column(EnumString(ToolType))
    model_provider: Mapped[ModelProvider | None] = mapped_column(EnumString(ModelProvider))
    execution_status: Mapped[ExecutionStatus | None] = mapped_column(EnumString(ExecutionStatus))
    auth_mode: Mapped[AuthMode | None] = mapped_column(EnumString(AuthMode))
    trigger_type: Mapped[TriggerType | None] = mapped_column(EnumString(TriggerType))


def _create_tables(session: Session) -> None:
    EnumSampleBase.metadata.create_all(session.connection())


@pytest.fixture
async def session(db_session: AsyncSession) -> AsyncSession:
    """Return ``db_session`` with the sample table created inside its transaction."""
    await db_session.run_sync(_create_tables)
    return db_session


# --- the enums -----------------------------------------------------------------------------


@pytest.mark.parametrize("enum_class", ENUMS, ids=lambda e: e.__name__)
def test_values_are_exactly_the_spec(enum_class: type[StrEnum]) -> None:
    assert [member.value for member in enum_class] == EXPECTED[enum_class]


@pytest.mark.parametrize("enum_class", ENUMS, ids=lambda e: e.__name__)
def test_members_are_strings_named_after_their_values(enum_class: type[StrEnum]) -> None:
    assert issubclass(enum_class, StrEnum)
    for member in enum_class:
        assert isinstance(member, str)
        assert member == member.value
        assert str(member) == member.value
        assert f"{member}" == member.value
        assert member.name == member.value.upper()
        assert enum_class(member.value) is member


def test_the_values_fit_the_column() -> None:
    assert all(len(value) <= ENUM_LENGTH for values in EXPECTED.values() for value in values)


def test_unknown_value_is_rejected() -> None:
    with pytest.raises(ValueError, match="'webhook' is not a valid TriggerType"):
        TriggerType("webhook")


# --- EnumString ----------------------------------------------------------------------------


def test_enum_string_binds_values_and_names_the_enum_on_error() -> None:
    column_type = EnumString(ToolType)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    assert column_type.process_bind_param(ToolType.NOTIFICATION, dialect) == "notification"
    assert column_type.process_bind_param("notification", dialect) == "notification"
    assert column_type.process_bind_param(None, dialect) is None
    assert column_type.process_result_value("notification", dialect) is ToolType.NOTIFICATION
    assert column_type.process_result_value(None, dialect) is None
    with pytest.raises(
        ValueError, match=r"'NOTIFICATION' is not a valid ToolType; expected one of"
    ):
        column_type.process_bind_param("NOTIFICATION", dialect)
    assert repr(column_type) == "EnumString(ToolType)"


def test_enum_string_ddl_is_varchar_50() -> None:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    assert EnumString(NodeType).compile(dialect=dialect) == "VARCHAR(50)"


async def test_columns_are_varchar_50_in_the_database(session: AsyncSession) -> None:
    rows = await session.execute(
        text(
            "SELECT column_name, data_type, character_maximum_length "
            "FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'test_enums_sample' "
            "AND column_name <> 'id'"
        )
    )
    found = {row.column_name: (row.data_type, row.character_maximum_length) for row in rows}
    assert found == {name: ("character varying", 50) for name in COLUMNS.values()}
    # No PostgreSQL ENUM type was created for them.
    enum_types = await session.scalar(
        text(
            "SELECT count(*) FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE t.typtype = 'e' AND n.nspname = current_schema()"
        )
    )
    assert enum_types == 0


@pytest.mark.parametrize("enum_class", ENUMS, ids=lambda e: e.__name__)
async def test_every_member_round_trips(session: AsyncSession, enum_class: type[StrEnum]) -> None:
    column = COLUMNS[enum_class]
    rows = [EnumSample(**{column: member}) for member in enum_class]
    session.add_all(rows)
    await session.flush()
    ids = {row.id: getattr(row, column) for row in rows}
    session.expunge_all()

    # Stored as the plain value.
    raw = await session.execute(text(f"SELECT id, {column} AS value FROM test_enums_sample"))
    stored = {row.id: row.value for row in raw}
    assert stored == {key: member.value for key, member in ids.items()}
    assert all(type(value) is str for value in stored.values())

    # Loaded back as the members themselves.
    loaded = (await session.scalars(select(EnumSample))).all()
    assert len(loaded) == len(EXPECTED[enum_class])
    for row in loaded:
        value = getattr(row, column)
        assert type(value) is enum_class
        assert value is ids[row.id]


async def test_plain_strings_are_stored_as_members(session: AsyncSession) -> None:
    row = EnumSample(auth_mode="sdk", model_provider=None)
    session.add(row)
    await session.flush()
    session.expunge_all()
    loaded = await session.scalar(select(EnumSample))
    assert loaded is not None
    assert loaded.auth_mode is AuthMode.SDK
    assert loaded.model_provider is None


async def test_filtering_by_member(session: AsyncSession) -> None:
    session.add_all(
        [EnumSample(trigger_type=TriggerType.MANUAL), EnumSample(trigger_type=TriggerType.EVENT)]
    )
    await session.flush()
    statement = select(EnumSample.trigger_type).where(EnumSample.trigger_type == TriggerType.MANUAL)
    assert list(await session.scalars(statement)) == [TriggerType.MANUAL]


async def test_invalid_value_fails_before_reaching_the_database(
    session: AsyncSession, db_engine: AsyncEngine
) -> None:
    session.add(EnumSample(tool_type="crystal_ball"))
    with recorded_statements(db_engine) as statements, pytest.raises(StatementError) as caught:
        await session.flush()

    assert isinstance(caught.value.orig, ValueError)
    assert "'crystal_ball' is not a valid ToolType" in str(caught.value.orig)
    assert "ToolType" in str(caught.value)
    assert not [s for s in statements if s.lstrip().upper().startswith("INSERT")]


async def test_loading_an_invalid_stored_value_raises(session: AsyncSession) -> None:
    key = uuid.uuid4()
    await session.execute(
        text("INSERT INTO test_enums_sample (id, node_type) VALUES (:id, 'teleporter')"),
        {"id": key},
    )
    with pytest.raises(ValueError, match="'teleporter' is not a valid NodeType"):
        await session.scalar(select(EnumSample).where(EnumSample.id == key))
