"""The mixins every model gets from ``Base``: a client-side UUID key, timestamps, soft
delete; and ``VersionedMixin`` for optimistic locking.

Soft delete is enforced for the whole ORM here: every ORM select (relationship loads
included) and ORM bulk update or delete leaves soft-deleted rows out, and
``.execution_options(include_deleted=True)`` on a statement opts out. A parent's soft delete
carries to the relationships its ``__soft_delete_cascade__`` names.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar, Self

from sqlalchemy import DateTime, Select, event, func, inspect, select, text, update
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import (
    Mapped,
    ORMExecuteState,
    Session,
    declared_attr,
    mapped_column,
    with_loader_criteria,
)
from sqlalchemy.sql.elements import ColumnElement

from project.orm.types import uuid7

INCLUDE_DELETED = "include_deleted"
#: An execution option: the statement has ``deleted_at IS NULL`` for its only
#: soft-deletable entity already (``Repository.get``), so the criteria are not added again.
SOFT_DELETE_FILTERED = "pastetrader_soft_delete_filtered"


class UUIDPrimaryKeyMixin:
    """Add ``id``: a time-ordered UUID made by the ORM, with ``gen_random_uuid()`` for raw SQL.

    ``insert_sentinel`` lets the ORM match RETURNING rows to objects by the key it made,
    which keeps many-object INSERTs batched despite the server default.
    """

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True),
        primary_key=True,
        default=uuid7,
        server_default=text("gen_random_uuid()"),
        insert_sentinel=True,
        sort_order=-100,
    )


class TimestampMixin:
    """Add ``created_at`` and ``updated_at``, set by the server and fetched after each flush."""

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False, sort_order=100
    )
    # statement_timestamp(), not now(): an update later in the same transaction still moves it.
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        server_default=func.now(),
        onupdate=func.statement_timestamp(),
        nullable=False,
        sort_order=101,
    )

    @declared_attr.directive
    @classmethod
    def __mapper_args__(cls) -> dict[str, Any]:
        # Fetch server-generated values with RETURNING, so reading them never lazy-loads.
        return {"eager_defaults": True}


class SoftDeleteMixin:
    """Add ``deleted_at``, ``is_deleted``, ``active()``, ``soft_delete()`` and ``restore()``.

    ``__soft_delete_cascade__`` names one-to-many relationships whose rows are soft-deleted
    (and restored) with the parent when it is flushed, loaded or not.
    """

    __soft_delete_cascade__: ClassVar[tuple[str, ...]] = ()

    deleted_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None, nullable=True, sort_order=102
    )

    @hybrid_property
    def is_deleted(self) -> bool:
        """Return whether the row is soft-deleted (also usable in SQL)."""
        return self.deleted_at is not None

    @is_deleted.inplace.expression
    @classmethod
    def _is_deleted_expression(cls) -> ColumnElement[bool]:
        return cls.deleted_at.is_not(None)

    @classmethod
    def active(cls) -> Select[Self]:
        """Return a select of the rows that are not soft-deleted."""
        return select(cls).where(cls.deleted_at.is_(None))

    def soft_delete(self) -> None:
        """Mark the row deleted; it stays in the table and can be restored."""
        if self.deleted_at is None:
            self.deleted_at = datetime.now(UTC)

    def restore(self) -> None:
        """Undo ``soft_delete()``."""
        self.deleted_at = None


class VersionedMixin:
    """Add ``version``, checked and incremented by every ORM UPDATE (optimistic locking)."""

    version: Mapped[int] = mapped_column(default=1, server_default="1", sort_order=99)

    @declared_attr.directive
    @classmethod
    def __mapper_args__(cls) -> dict[str, Any]:
        # Keep the timestamps' eager fetching: a mapper takes one __mapper_args__.
        table = cls.__table__  # type: ignore[attr-defined]
        return {"eager_defaults": True, "version_id_col": table.c.version}


def _not_deleted(cls: type[SoftDeleteMixin]) -> ColumnElement[bool]:
    return cls.deleted_at.is_(None)


@event.listens_for(Session, "do_orm_execute")
def _hide_soft_deleted(state: ORMExecuteState) -> None:
    """Add ``deleted_at IS NULL`` for every soft-deletable entity of an ORM select, and
    of an ORM bulk ``update()``/``delete()``: soft-deleted rows are out of reach unless
    a statement opts in with ``include_deleted``."""
    if (
        (state.is_select or state.is_update or state.is_delete)
        and not state.is_column_load
        and not state.execution_options.get(INCLUDE_DELETED, False)
        and not state.execution_options.get(SOFT_DELETE_FILTERED, False)
    ):
        state.statement = state.statement.options(
            with_loader_criteria(SoftDeleteMixin, _not_deleted, include_aliases=True)
        )


@event.listens_for(Session, "before_flush")
def _cascade_soft_delete(session: Session, context: Any, instances: Any) -> None:
    """Carry a parent's soft delete or restore to the relationships it names."""
    for parent in list(session.dirty):
        if not isinstance(parent, SoftDeleteMixin) or not parent.__soft_delete_cascade__:
            continue
        history = inspect(parent).attrs.deleted_at.history
        if not history.has_changes():
            continue
        # The old value is unknown when the attribute was expired (after a rollback, say):
        # read it, or a restore would match no child.
        before = history.deleted[0] if history.deleted else _stored_deleted_at(session, parent)
        after = parent.deleted_at
        for name in parent.__soft_delete_cascade__:
            _cascade_to(session, parent, name, before, after)


def _stored_deleted_at(session: Session, parent: SoftDeleteMixin) -> Any:
    state = inspect(parent)
    if state.key is None:  # never flushed: nothing stored
        return None
    table = state.mapper.local_table
    keys = zip(state.mapper.primary_key, state.key[1], strict=True)
    return session.connection().scalar(
        select(table.c.deleted_at).where(*(column == value for column, value in keys))
    )


def _cascade_to(
    session: Session, parent: SoftDeleteMixin, name: str, before: Any, after: Any
) -> None:
    relationship = inspect(type(parent)).relationships[name]
    child = relationship.mapper.class_
    (local, remote), *_ = relationship.local_remote_pairs
    # Restore brings back only what this parent's delete took, not older deletions.
    match = child.deleted_at.is_(None) if after is not None else child.deleted_at == before
    parent_key = getattr(parent, relationship.parent.get_property_by_column(local).key)
    session.connection().execute(
        update(child)
        .where(remote == parent_key, match)
        .values(deleted_at=after)
        .execution_options(synchronize_session=False)
    )
    for loaded in parent.__dict__.get(name, ()):  # keep loaded children in step
        taken = loaded.deleted_at is None if after is not None else loaded.deleted_at == before
        if taken:
            loaded.deleted_at = after
