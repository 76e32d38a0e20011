"""Data access for one model: ``Repository[Model]``, on a session it is given.

A repository never commits: the session's owner does (``SessionDep`` before the response,
``session_scope()`` at the end of its block). Soft-deleted rows are out of every read
unless asked for. Database errors come out typed: ``NotFound``, ``Conflict`` (a unique
key taken, a row still referenced) and ``StaleVersion`` (a ``VersionedMixin`` row changed
since it was read).

``values()`` reads a row's columns without making an entity, for reads that only answer.

Lists page by keyset on the uuid7 ``id``, which is time-ordered: the cursor is the last
key seen, opaque to clients, and stays right while rows are inserted meanwhile::

    tools = Repository(session, Tool)
    page = await tools.list(Tool.is_active.is_(True), limit=50)
    more = await tools.list(Tool.is_active.is_(True), limit=50, after=page.next)
"""

from __future__ import annotations

import base64
import builtins
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import (
    ColumnElement,
    PrimaryKeyConstraint,
    Select,
    Table,
    UniqueConstraint,
    bindparam,
    func,
    inspect,
    select,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.orm.interfaces import ORMOption

from project.exceptions import (
    Conflict,
    InvalidCursor,
    NotFound,
    ProjectError,
    StaleVersion,
    driver_error,
    sqlstate,
)
from project.models import INCLUDE_DELETED, Base, VersionedMixin
from project.orm.mixins import SOFT_DELETE_FILTERED

M = TypeVar("M", bound=Base)
T = TypeVar("T")

#: Columns the repository manages itself: ``update`` and ``upsert`` never set them.
MANAGED_COLUMNS = frozenset({"id", "created_at", "updated_at", "deleted_at", "version"})
_CURSOR = re.compile(r"[A-Za-z0-9_-]{22}\Z")
_UNIQUE_VIOLATION = "23505"
_FOREIGN_KEY_VIOLATION = "23503"
#: The by-key selects, one per model and flavour (include_deleted, for_update), built
#: once: a read by key then builds no statement, and SQLAlchemy finds its compiled form
#: by a cache key the statement has already memoized.
_BY_KEY: dict[tuple[type[Any], bool, bool], Select[Any]] = {}
#: The same for ``values()``: one select per model, columns and include_deleted.
_VALUES_BY_KEY: dict[tuple[type[Any], tuple[str, ...], bool], Select[Any]] = {}


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its items and the cursor of the next page (None: the last)."""

    items: list[T]
    next: str | None


def encode_cursor(ident: uuid.UUID) -> str:
    """Return the opaque cursor that resumes a list after the row ``ident``."""
    return base64.urlsafe_b64encode(ident.bytes).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> uuid.UUID:
    """Return the key a cursor from ``encode_cursor`` holds; anything else is InvalidCursor."""
    # b64decode skips characters outside the alphabet, so check the shape first; the
    # round trip rejects a last character whose padding bits are set.
    if _CURSOR.match(cursor):
        ident = uuid.UUID(bytes=base64.urlsafe_b64decode(cursor + "=="))
        if encode_cursor(ident) == cursor:
            return ident
    raise InvalidCursor("invalid cursor: pass the 'next' value of the previous page")


def conflict_from(error: IntegrityError, label: str = "row") -> Conflict:
    """Return the Conflict an IntegrityError means, naming the constraint but no value."""
    code = sqlstate(error)
    constraint = getattr(driver_error(error), "constraint_name", None)
    where = f" ({constraint})" if constraint else ""
    if code == _UNIQUE_VIOLATION:
        article = "an" if label[:1].lower() in "aeiou" else "a"
        return Conflict(f"{article} {label} with the same unique key exists{where}")
    if code == _FOREIGN_KEY_VIOLATION:
        return Conflict(f"the {label} refers to a missing row, or is still referred to{where}")
    return Conflict(f"the {label} violates a constraint{where}")


@contextmanager
def translated_errors(label: str = "row") -> Iterator[None]:
    """Turn IntegrityError into Conflict and StaleDataError into StaleVersion."""
    try:
        yield
    except IntegrityError as error:
        raise conflict_from(error, label) from error
    except StaleDataError as error:
        raise StaleVersion(f"the {label} was changed by someone else; read it again") from error


# Reads run in one greenlet with ``run_sync``: ``AsyncSession.execute`` would also buffer
# the result and wrap it for async iteration, which a read that takes its rows at once
# does not need (about 35 us of each GET by key under uvicorn).


def _first(session: Session, statement: Select[Any], params: Mapping[str, Any]) -> Any:
    return session.execute(statement, params).scalar()


def _unique(session: Session, statement: Select[Any]) -> builtins.list[Any]:
    return builtins.list(session.scalars(statement).unique())


def _row(session: Session, statement: Select[Any], params: Mapping[str, Any]) -> Row[Any] | None:
    return session.execute(statement, params).first()


class Repository(Generic[M]):
    """Typed async data access for one model, on a session it is given; never commits.

    Pass the model, or subclass with ``model = Tool``. ``options`` (loader options such
    as ``selectinload(Agent.tools)``) apply to every read, so relationships are loaded
    with the row and nothing ever lazy-loads.
    """

    model: type[M]
    options: tuple[ORMOption, ...] = ()

    def __init__(
        self,
        session: AsyncSession,
        model: type[M] | None = None,
        *,
        options: Iterable[ORMOption] = (),
    ) -> None:
        if model is not None:
            self.model = model
        elif not hasattr(self, "model"):
            raise ProjectError(f"{type(self).__name__} needs a model: pass one or set 'model ='")
        self.session = session
        self.options = (*type(self).options, *options)

    @property
    def label(self) -> str:
        """Return the model's name as errors say it."""
        return self.model.__name__.lower()

    # --- reads --------------------------------------------------------------------------

    def select(
        self, *, options: Iterable[ORMOption] | None = None, include_deleted: bool = False
    ) -> Select[M]:
        """Return a select of the model with the loader options (live rows only by default)."""
        statement = select(self.model).options(*(self.options if options is None else options))
        if include_deleted:
            statement = statement.execution_options(**{INCLUDE_DELETED: True})
        return statement

    def _live(self, include_deleted: bool) -> tuple[ColumnElement[bool], ...]:
        # Aggregates select no entity, so the global soft-delete criteria may not reach
        # them: say it explicitly.
        return () if include_deleted else (self.model.deleted_at.is_(None),)

    async def get_or_none(
        self,
        ident: uuid.UUID,
        *,
        options: Iterable[ORMOption] | None = None,
        include_deleted: bool = False,
        for_update: bool = False,
    ) -> M | None:
        """Return the row with key ``ident``, or None."""
        options = self.options if options is None else tuple(options)
        if not options:  # the common case: one prepared statement per model
            by_key = self._by_key(include_deleted, for_update)
            found: M | None = await self.session.run_sync(_first, by_key, {"ident": ident})
            return found
        statement = self.select(options=options, include_deleted=include_deleted).where(
            self.model.id == ident
        )
        if for_update:
            statement = statement.with_for_update().execution_options(populate_existing=True)
        rows: builtins.list[M] = await self.session.run_sync(_unique, statement)
        return rows[0] if rows else None

    def _by_key(self, include_deleted: bool, for_update: bool) -> Select[M]:
        """Return the select of one row by key (bound as ``ident``), built once per model.

        Without loader options the select names one entity, so ``deleted_at IS NULL`` in
        its WHERE is all the soft-delete criteria would add; it says so
        (``SOFT_DELETE_FILTERED``), and the session's listener leaves it alone.
        """
        key = (self.model, include_deleted, for_update)
        statement = _BY_KEY.get(key)
        if statement is None:
            statement = select(self.model).where(self.model.id == bindparam("ident"))
            if include_deleted:
                statement = statement.execution_options(**{INCLUDE_DELETED: True})
            else:
                statement = statement.where(self.model.deleted_at.is_(None)).execution_options(
                    **{SOFT_DELETE_FILTERED: True}
                )
            if for_update:
                statement = statement.with_for_update().execution_options(populate_existing=True)
            statement = _BY_KEY.setdefault(key, statement)
        return statement

    async def get(
        self,
        ident: uuid.UUID,
        *,
        options: Iterable[ORMOption] | None = None,
        include_deleted: bool = False,
        for_update: bool = False,
    ) -> M:
        """Return the row with key ``ident``; NotFound when there is none."""
        found = await self.get_or_none(
            ident, options=options, include_deleted=include_deleted, for_update=for_update
        )
        if found is None:
            raise NotFound(f"{self.label} {ident} does not exist")
        return found

    async def values(
        self, ident: uuid.UUID, *names: str, include_deleted: bool = False
    ) -> Row[Any]:
        """Return the columns ``names`` (every column by default) of the row with key
        ``ident``, read by attribute; NotFound when there is none.

        Django's ``values()``: no entity is built or added to the session, which makes a
        read that only answers a request about 80 us cheaper than ``get()`` (GET
        ``/api/tools/{id}`` under uvicorn). Soft-deleted rows are out unless asked for.
        """
        key = (self.model, names, include_deleted)
        statement = _VALUES_BY_KEY.get(key)
        if statement is None:
            statement = _VALUES_BY_KEY.setdefault(key, self._values_by_key(names, include_deleted))
        row: Row[Any] | None = await self.session.run_sync(_row, statement, {"ident": ident})
        if row is None:
            raise NotFound(f"{self.label} {ident} does not exist")
        return row

    def _values_by_key(self, names: tuple[str, ...], include_deleted: bool) -> Select[Any]:
        mapper = inspect(self.model)
        columns = mapper.columns
        for name in names:
            if name not in columns:
                raise ProjectError(f"{self.model.__name__} has no column {name!r}")
        # The table's columns, labelled with the attribute names: rows come back as they
        # are, each column's type applied, and no entity is made.
        chosen = [columns[name].label(name) for name in names or columns.keys()]
        table = mapper.local_table
        statement = select(*chosen).where(table.c.id == bindparam("ident"))
        if include_deleted:
            return statement.execution_options(**{INCLUDE_DELETED: True})
        return statement.where(table.c.deleted_at.is_(None)).execution_options(
            **{SOFT_DELETE_FILTERED: True}
        )

    async def list(
        self,
        *filters: ColumnElement[bool],
        order: Literal["asc", "desc"] = "asc",
        limit: int = 50,
        after: str | None = None,
        options: Iterable[ORMOption] | None = None,
    ) -> Page[M]:
        """Return up to ``limit`` rows matching ``filters`` after the cursor ``after``.

        Rows come oldest first (``order="desc"``: newest first) by their time-ordered key,
        and ``Page.next`` resumes after the last one. Paging while others insert skips
        nothing that existed and repeats nothing.
        """
        if limit < 1:
            raise ProjectError(f"limit must be at least 1, got {limit}")
        key = self.model.id
        statement = self.select(options=options).where(*filters)
        if after is not None:
            last = decode_cursor(after)
            statement = statement.where(key > last if order == "asc" else key < last)
        # One row more than asked tells whether another page follows, without a count.
        statement = statement.order_by(key.asc() if order == "asc" else key.desc())
        rows: builtins.list[M] = await self.session.run_sync(_unique, statement.limit(limit + 1))
        items = rows[:limit]
        return Page(items, encode_cursor(items[-1].id) if len(rows) > limit else None)

    async def count(self, *filters: ColumnElement[bool], include_deleted: bool = False) -> int:
        """Return how many rows match ``filters``."""
        statement = (
            select(func.count())
            .select_from(self.model)
            .where(*filters, *self._live(include_deleted))
            .execution_options(**{INCLUDE_DELETED: True})
        )
        return int(await self.session.scalar(statement) or 0)

    async def exists(self, *filters: ColumnElement[bool], include_deleted: bool = False) -> bool:
        """Return whether any row matches ``filters``."""
        statement = (
            select(self.model.id)
            .where(*filters, *self._live(include_deleted))
            .limit(1)
            .execution_options(**{INCLUDE_DELETED: True})
        )
        return await self.session.scalar(statement) is not None

    async def _target(self, target: M | uuid.UUID, *, include_deleted: bool = False) -> M:
        if isinstance(target, uuid.UUID):
            return await self.get(target, include_deleted=include_deleted)
        return target

    # --- writes -------------------------------------------------------------------------

    async def flush(self) -> None:
        """Send pending changes, with database errors translated."""
        with translated_errors(self.label):
            await self.session.flush()

    async def add(self, obj: M) -> M:
        """Insert ``obj`` and return it, its key and timestamps set."""
        self.session.add(obj)
        await self.flush()
        return obj

    async def add_many(self, objs: Iterable[M]) -> builtins.list[M]:
        """Insert ``objs`` in batched INSERTs (the keys are made client-side) and return them."""
        added = builtins.list(objs)
        self.session.add_all(added)
        await self.flush()
        return added

    def _settable(self, values: Mapping[str, Any]) -> None:
        columns = {attr.key for attr in inspect(self.model).column_attrs}
        for key in values:
            if key not in columns or key in MANAGED_COLUMNS:
                raise ProjectError(f"{self.model.__name__} has no settable column {key!r}")

    async def update(
        self, target: M | uuid.UUID, values: Mapping[str, Any], *, version: int | None = None
    ) -> M:
        """Set ``values`` on the row (a partial update) and return it.

        ``version`` is the version the caller read, for ``VersionedMixin`` models: a row
        at another version, or one that changes before this UPDATE lands, raises
        StaleVersion instead of overwriting someone else's change.
        """
        self._settable(values)
        obj = await self._target(target)
        if version is not None:
            if not isinstance(obj, VersionedMixin):
                raise ProjectError(f"{self.model.__name__} is not versioned")
            if obj.version != version:
                raise StaleVersion(
                    f"the {self.label} is at version {obj.version}, not {version}; read it again"
                )
        for key, value in values.items():
            setattr(obj, key, value)
        await self.flush()
        return obj

    def _conflict_where(self, on: Sequence[str]) -> ColumnElement[bool] | None:
        """Return the WHERE of the unique index on exactly ``on`` (None: a plain one)."""
        table = self.model.__table__
        assert isinstance(table, Table)
        wanted = builtins.list(on)
        for index in table.indexes:
            if index.unique and [column.name for column in index.columns] == wanted:
                where: ColumnElement[bool] | None = index.dialect_options["postgresql"]["where"]
                return where
        for constraint in table.constraints:
            names = [column.name for column in getattr(constraint, "columns", ())]
            unique = isinstance(constraint, UniqueConstraint | PrimaryKeyConstraint)
            if unique and names == wanted:
                return None
        raise ProjectError(f"{self.model.__name__} has no unique key on {', '.join(on)}")

    async def upsert(
        self,
        values: Mapping[str, Any],
        *,
        on: Sequence[str],
        update: Sequence[str] | None = None,
    ) -> M:
        """Insert ``values``, or update the live row with the same natural key ``on``.

        One ``INSERT ... ON CONFLICT DO UPDATE``: atomic under concurrency, so racing
        upserts of one key leave one row. ``update`` names the columns to overwrite (all
        given but the key, by default). A partial unique index (``WHERE deleted_at IS
        NULL``) is matched with its own condition, so a soft-deleted row never blocks.
        """
        self._settable(values)
        statement = pg_insert(self.model).values(**values)
        changing = [key for key in (values if update is None else update) if key not in on]
        assignments: dict[str, Any] = {key: statement.excluded[key] for key in changing}
        # ON CONFLICT bypasses the ORM's onupdate and version counter: set them here.
        assignments["updated_at"] = func.statement_timestamp()
        if issubclass(self.model, VersionedMixin):
            assignments["version"] = self.model.__table__.c.version + 1
        upsert = statement.on_conflict_do_update(
            index_elements=builtins.list(on),
            index_where=self._conflict_where(on),
            set_=assignments,
        ).returning(self.model)
        with translated_errors(self.label):
            result = await self.session.scalars(
                upsert, execution_options={"populate_existing": True}
            )
        return result.one()

    async def soft_delete(self, target: M | uuid.UUID) -> M:
        """Mark the row deleted (its unique keys become free) and return it."""
        obj = await self._target(target)
        obj.soft_delete()
        await self.flush()
        return obj

    async def restore(self, target: M | uuid.UUID) -> M:
        """Bring a soft-deleted row back; Conflict when its unique key was taken since."""
        obj = await self._target(target, include_deleted=True)
        obj.restore()
        await self.flush()
        return obj

    async def delete(self, target: M | uuid.UUID) -> None:
        """Delete the row for good; Conflict when other rows still refer to it."""
        obj = await self._target(target, include_deleted=True)
        await self.session.delete(obj)
        await self.flush()
