"""Seeders: declared per app in ``seeds.py``, run in dependency order in one transaction.

    @seeder(depends_on=["tools.builtin"], reference=True)
    async def builtin(ctx: SeedContext) -> None: ...

A seeder's name is ``<app label>.<function name>``. Reference data is upserted on a
natural key, so seeding twice changes nothing; demo data scales with ``ctx.count``.
Rows come from the factories (``project.factories.rows.rows``) and are written in large
``COPY`` batches with client-generated keys, streamed so that memory stays flat.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, Any, TypeVar

from project.exceptions import ProjectError, describe

if TYPE_CHECKING:
    import uuid

    from sqlalchemy.ext.asyncio import AsyncSession

    from project.apps import Apps

SeederFunc = Callable[["SeedContext"], Awaitable[None]]
F = TypeVar("F", bound=SeederFunc)
BATCH_SIZE = 10_000


class SeedError(ProjectError):
    """Seeding could not be planned or a seeder failed."""


@dataclass(frozen=True)
class SeederSpec:
    """What the ``@seeder`` decorator records on a function."""

    depends_on: tuple[str, ...]
    reference: bool


@dataclass(frozen=True)
class Seeder:
    """A discovered seeder."""

    name: str
    app: str
    func: SeederFunc
    depends_on: tuple[str, ...]
    reference: bool


def seeder(*, depends_on: Sequence[str] = (), reference: bool = False) -> Callable[[F], F]:
    """Declare a seeder; ``depends_on`` names other seeders (``app.name``), in any app."""

    def mark(func: F) -> F:
        func.__seeder__ = SeederSpec(tuple(depends_on), reference)  # type: ignore[attr-defined]
        return func

    return mark


def discover(registry: Apps | None = None) -> dict[str, Seeder]:
    """Return every installed app's seeders by name, in app then definition order."""
    from project.apps import apps

    found: dict[str, Seeder] = {}
    for config in (registry or apps).get_app_configs():
        module = config.import_module("seeds")
        if module is None:
            continue
        for attr, value in vars(module).items():
            spec = getattr(value, "__seeder__", None)
            if isinstance(spec, SeederSpec) and callable(value):
                name = f"{config.label}.{attr}"
                found[name] = Seeder(name, config.label, value, spec.depends_on, spec.reference)
    return found


def plan(available: dict[str, Seeder], app_labels: Sequence[str] = ()) -> list[Seeder]:
    """Order the seeders of ``app_labels`` (all when empty) and what they depend on.

    An unknown dependency or a cycle is reported by name before anything runs.
    """
    for item in available.values():
        for dependency in item.depends_on:
            if dependency not in available:
                raise SeedError(
                    f"seeder {item.name} depends on {dependency!r}, which no installed app defines"
                )
    known_apps = {item.app for item in available.values()}
    for label in app_labels:
        if label not in known_apps:
            raise SeedError(f"no seeders in app {label!r}; apps with seeders: {sorted(known_apps)}")
    wanted = [s for s in available.values() if not app_labels or s.app in app_labels]
    ordered: list[Seeder] = []
    state: dict[str, str] = {}

    def visit(item: Seeder, path: list[str]) -> None:
        if state.get(item.name) == "done":
            return
        if state.get(item.name) == "visiting":
            cycle = [*path[path.index(item.name) :], item.name]
            raise SeedError(f"seeders depend on each other in a cycle: {' -> '.join(cycle)}")
        state[item.name] = "visiting"
        for dependency in item.depends_on:
            visit(available[dependency], [*path, item.name])
        state[item.name] = "done"
        ordered.append(item)

    for item in wanted:
        visit(item, [])
    return ordered


@dataclass
class SeedContext:
    """What a seeder gets: the session, the scale, the randomness, and the writers."""

    session: AsyncSession
    count: int
    random: random.Random
    show_progress: bool = False
    rows_written: Counter[str] = field(default_factory=Counter)
    #: What seeders publish for the seeders that depend on them (ids by natural key, ...).
    shared: dict[str, Any] = field(default_factory=dict)
    current: str = ""
    _advance: Callable[[int], None] = field(default=lambda n: None, repr=False)

    async def write(self, model: type[Any], rows: Iterable[dict[str, Any]]) -> None:
        """Insert ``rows`` (dicts of column values) with COPY, in streamed batches.

        Keys are generated client-side when a row has no ``id``; server defaults fill the
        columns the rows leave out. Values go through the columns' own types (enums are
        checked) before they are sent.
        """
        table = model.__table__
        driver = await self._driver()
        iterator = iter(rows)
        first = next(iterator, None)
        if first is None:
            return
        # Every column but the server-set timestamps (unless given), so rows may differ in
        # which fields they carry; a missing field takes the column's client default.
        columns = [
            c for c in table.columns if c.name in first or c.server_default is None or c.default
        ]
        fill = [client_default(c) for c in columns]
        convert = [wire_converter(c) for c in columns]
        names = [c.name for c in columns]

        def records() -> Iterator[tuple[Any, ...]]:
            batch: list[dict[str, Any]] = [first]
            while True:
                batch.extend(islice(iterator, BATCH_SIZE - len(batch)))
                if not batch:
                    return
                unknown = set().union(*map(dict.keys, batch)).difference(names)
                if unknown:  # a field the column list (from the first row) would drop silently
                    raise SeedError(
                        f"rows for {table.name} set {sorted(unknown)}, which the first row "
                        "does not: give every row the same fields"
                    )
                for row in batch:
                    yield tuple(
                        [
                            (to_wire(row[name]) if to_wire else row[name])
                            if name in row
                            else default()
                            for name, default, to_wire in zip(names, fill, convert, strict=True)
                        ]
                    )
                batch = []

        def advance(n: int) -> None:
            self.rows_written[table.name] += n
            self._advance(n)

        await copy_records(driver, table.name, names, records(), on_batch=advance)

    async def upsert(
        self, model: type[Any], rows: Sequence[dict[str, Any]], *, key: str = "name"
    ) -> dict[Any, uuid.UUID]:
        """Insert or update ``rows`` by the natural ``key`` among live rows; return the ids
        by key. A row that matches what is stored is left untouched."""
        from sqlalchemy import or_, text
        from sqlalchemy.dialects.postgresql import insert

        if not rows:
            return {}
        table = model.__table__
        values = insert(table).values(list(rows))
        changed = [c for c in rows[0] if c != key]
        if not changed:  # nothing to update: only the key is given
            inserted = await self.session.execute(
                values.on_conflict_do_nothing(
                    index_elements=[key], index_where=text("deleted_at IS NULL")
                ).returning(table.c.id)
            )
            self.rows_written[table.name] += len(inserted.all())
            return await self._ids(table, key, [row[key] for row in rows])
        statement = values.on_conflict_do_update(
            index_elements=[key],
            index_where=text("deleted_at IS NULL"),
            set_={**{c: values.excluded[c] for c in changed}, "updated_at": text("now()")},
            where=or_(*(table.c[c].is_distinct_from(values.excluded[c]) for c in changed)),
        ).returning(table.c.id)
        written = (await self.session.execute(statement)).all()
        self.rows_written[table.name] += len(written)
        return await self._ids(table, key, [row[key] for row in rows])

    async def _ids(self, table: Any, key: str, keys: list[Any]) -> dict[Any, uuid.UUID]:
        """Return the ids of the live rows with these natural keys."""
        from sqlalchemy import select

        found = await self.session.execute(
            select(table.c[key], table.c.id).where(
                table.c[key].in_(keys), table.c.deleted_at.is_(None)
            )
        )
        return {k: i for k, i in found.all()}

    async def _driver(self) -> Any:
        connection = await self.session.connection()
        raw = await connection.get_raw_connection()
        return raw.driver_connection

    @contextmanager
    def progress(self, total: int) -> Iterator[None]:
        """Show a progress bar of ``total`` rows for the current seeder, on a terminal."""
        if not self.show_progress or total <= 0:
            yield
            return
        import click

        with click.progressbar(length=total, label=self.current) as bar:
            self._advance = bar.update
            try:
                yield
            finally:
                self._advance = lambda n: None


async def copy_records(
    driver: Any,
    table: str,
    columns: Sequence[str],
    records: Iterable[tuple[Any, ...]],
    *,
    on_batch: Callable[[int], None] | None = None,
) -> int:
    """Write ``records`` (tuples in ``columns`` order, values as ``wire_converter`` makes
    them) into ``table`` with COPY, ``BATCH_SIZE`` at a time; return how many.

    ``driver`` is an asyncpg connection. Only one batch is held at once, so memory stays
    flat however many records come; ``on_batch`` hears each batch's size.
    """
    total = 0
    iterator = iter(records)
    while batch := list(islice(iterator, BATCH_SIZE)):
        await driver.copy_records_to_table(table, records=batch, columns=list(columns))
        total += len(batch)
        if on_batch is not None:
            on_batch(len(batch))
    return total


def client_default(column: Any) -> Callable[[], Any]:
    """Return the client-side default of ``column`` as a function (one that returns None
    when the column has none)."""
    default = column.default
    if default is None:
        return lambda: None
    if default.is_callable:
        return lambda: default.arg(None)
    value = default.arg
    return lambda: value


def wire_converter(column: Any) -> Callable[[Any], Any] | None:
    """Return how to turn a value into what COPY sends for ``column`` (None: as it is)."""
    from sqlalchemy.types import JSON, TypeDecorator

    kind = column.type
    if isinstance(kind, JSON):  # JSONB too: asyncpg's codec here takes text
        return lambda value: None if value is None else json.dumps(value)
    if isinstance(kind, TypeDecorator):
        from sqlalchemy.dialects import postgresql

        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        return lambda value: kind.process_bind_param(value, dialect)
    return None


@dataclass
class SeedReport:
    """What a run wrote."""

    seeders: dict[str, float]  # seconds each seeder took, in run order
    rows: Counter[str]
    seconds: float

    def lines(self) -> list[str]:
        """Return the summary: rows per table and the elapsed time."""
        total = sum(self.rows.values())
        out = [f"Seeded {total} rows with {len(self.seeders)} seeders in {self.seconds:.2f} s"]
        out += [f"  {table:<24} {count:>10}" for table, count in sorted(self.rows.items())]
        return out


def reseed(random_seed: int | None) -> random.Random:
    """Make factory_boy's, Faker's and the seeders' randomness repeatable for a seed."""
    if random_seed is None:
        return random.Random()  # noqa: S311 - demo data, not secrets
    import factory.random

    from project.factories import AsyncFactory

    factory.random.reseed_random(random_seed)
    pending: list[type[Any]] = [AsyncFactory]
    while pending:  # restart every factory's sequence
        cls = pending.pop()
        pending += cls.__subclasses__()
        if not cls._meta.abstract:
            cls.reset_sequence(force=True)  # a subclass may share its parent's counter
    return random.Random(random_seed)  # noqa: S311


async def run(
    app_labels: Sequence[str] = (),
    *,
    count: int = 100,
    random_seed: int | None = None,
    show_progress: bool = False,
    reference_only: bool = False,
) -> SeedReport:
    """Plan and run the seeders in one transaction: all of it is written, or none.

    ``reference_only`` runs only the reference seeders (``reference=True``): what a
    deploy needs, upserted so that running them again changes nothing.
    """
    from project.db import session_scope

    if count < 0:
        raise SeedError(f"--count must not be negative, got {count}")
    available = discover()
    if reference_only:
        available = {name: s for name, s in available.items() if s.reference}
    ordered = plan(available, app_labels)
    rng = reseed(random_seed)
    started = time.perf_counter()
    async with session_scope() as session:
        ctx = SeedContext(session=session, count=count, random=rng, show_progress=show_progress)
        timings: dict[str, float] = {}
        for item in ordered:
            ctx.current = item.name
            began = time.perf_counter()
            rows_before = sum(ctx.rows_written.values())
            try:
                await item.func(ctx)
            except Exception as error:
                raise SeedError(f"seeder {item.name} failed: {describe(error)}") from error
            timings[item.name] = time.perf_counter() - began
            if show_progress:  # each seeder's line, under its bar if it drew one
                import click

                rows = sum(ctx.rows_written.values()) - rows_before
                kind = "reference data" if item.reference else "demo data"
                click.echo(f"  {item.name} ({kind}): {rows} rows in {timings[item.name]:.2f} s")
    return SeedReport(timings, ctx.rows_written, time.perf_counter() - started)
