"""Fixtures in Django's format: ``dumpdata`` and ``loaddata``, streamed both ways.

A record is ``{"model": "tools.Tool", "pk": "...", "fields": {...}}``; a many-to-many
relationship through a plain association table (``Agent.tools``) is a field holding the
sorted list of the targets' keys, as in Django. A file ending in ``.jsonl`` holds one
record per line; one ending in ``.gz`` is compressed (``.json.gz``, ``.jsonl.gz``).

Dumps are deterministic: models in foreign-key order, rows by primary key, every column
(timestamps included) in table order, gzip without a timestamp. Soft-deleted rows are left
out unless asked for, and so are the rows that reference a left-out row (a node run of a
deleted workflow), so that a dump always loads.

Loads run in one transaction. Every record is parsed and checked (model, fields, types,
enum values) as it is read and copied, through seeding's COPY path, into a temporary
staging table per table; only when every file has been read are the tables written, in
foreign-key order, with an upsert on the primary key that leaves identical rows alone.
A dangling foreign key is found before its table is written. Any error is one line
naming the file and the record, and nothing is written.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import math
import re
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from project.exceptions import CommandError

if TYPE_CHECKING:
    import asyncpg
    from sqlalchemy import Column, Table

    from project.db.url import DatabaseURL

CHUNK = 1 << 20  # bytes read at a time from a .json file
PREFETCH = 5_000  # rows fetched per round trip by dumpdata's server-side cursor
STAGE_PREFIX = "_load_"


class FixtureError(CommandError):
    """A fixture could not be read, checked or loaded."""


@dataclass(frozen=True)
class ManyToMany:
    """A many-to-many field stored in a plain association table."""

    name: str
    table: Table
    local: str  # the association's column holding this model's key
    remote: str  # the one holding the target's key
    target: Table


@dataclass
class ModelSpec:
    """What dumping and loading need to know of one model."""

    label: str
    table: Table
    columns: list[Column[Any]]
    pk: str
    many: list[ManyToMany] = field(default_factory=list)

    @property
    def fields(self) -> list[str]:
        """Return the names a record's ``fields`` may hold: columns but the key, then m2m."""
        return [c.name for c in self.columns if c.name != self.pk] + [m.name for m in self.many]


def model_specs() -> dict[str, ModelSpec]:
    """Return every model by ``app.Model`` label, in foreign-key (dependency) order."""
    from project.db.inspection import _mappers
    from project.models import Base

    by_table = {m.local_table.name: (label, m) for label, m in _mappers().items()}  # type: ignore[attr-defined]
    specs: dict[str, ModelSpec] = {}
    for table in Base.metadata.sorted_tables:
        if table.name not in by_table:
            continue
        label, mapper = by_table[table.name]
        (pk,) = table.primary_key.columns  # every model has the single UUID key
        spec = ModelSpec(label, table, list(table.columns), pk.name)
        for rel in mapper.relationships:
            secondary = rel.secondary
            if secondary is None or getattr(secondary, "name", None) in by_table:
                continue
            assert rel.secondary_synchronize_pairs is not None
            (_, local), *_ = rel.synchronize_pairs
            (_, remote), *_ = rel.secondary_synchronize_pairs
            target = rel.mapper.local_table
            spec.many.append(ManyToMany(rel.key, secondary, local.name, remote.name, target))  # type: ignore[arg-type]
        specs[label] = spec
    # A table both sides map through is dumped once, from the first model that names it.
    seen: set[str] = set()
    for spec in specs.values():
        spec.many = [m for m in spec.many if m.table.name not in seen]
        seen.update(m.table.name for m in spec.many)
    return specs


def select_models(specs: dict[str, ModelSpec], names: Sequence[str]) -> list[ModelSpec]:
    """Return the models ``names`` (``app`` or ``app.Model``; all when empty), in order."""
    from project.db.inspection import did_you_mean

    if not names:
        return list(specs.values())
    wanted: set[str] = set()
    apps = {label.partition(".")[0] for label in specs}
    lowered = {label.lower(): label for label in specs}
    for name in names:
        if "." in name:
            if name.lower() not in lowered:
                raise did_you_mean("model", name, list(specs))
            wanted.add(lowered[name.lower()])
        elif name in apps:
            wanted.update(label for label in specs if label.partition(".")[0] == name)
        else:
            raise did_you_mean("app", name, sorted(apps))
    return [spec for label, spec in specs.items() if label in wanted]


# --- dumpdata -----------------------------------------------------------------------------


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _included(table: Table, alias: str, path: tuple[str, ...], depth: list[int]) -> str:
    """Return SQL that is true for a row of ``table`` a dump without deleted rows keeps:
    not soft-deleted, and every row it references kept too."""
    conditions = _live(table, alias) + _references_kept(table, alias, path, depth)
    return " AND ".join(conditions) or "true"


def _live(table: Table, alias: str) -> list[str]:
    return [f"{alias}.deleted_at IS NULL"] if "deleted_at" in table.c else []


def _references_kept(
    table: Table, alias: str, path: tuple[str, ...], depth: list[int]
) -> list[str]:
    """Return the conditions that every row a row of ``table`` references is kept."""
    conditions = []
    for fk in sorted(table.foreign_key_constraints, key=lambda c: str(c.name)):
        parent = fk.referred_table
        if parent.name in path:  # a cycle: the database's constraint is enough
            continue
        depth[0] += 1
        other = f"p{depth[0]}"
        pairs = [(e.parent.name, e.column.name) for e in fk.elements]
        nulls = " OR ".join(f"{alias}.{_q(c)} IS NULL" for c, _ in pairs)
        match = " AND ".join(f"{other}.{_q(r)} = {alias}.{_q(c)}" for c, r in pairs)
        inner = _included(parent, other, (*path, parent.name), depth)
        where = f"{match} AND {inner}" if inner != "true" else match
        conditions.append(
            f"({nulls} OR EXISTS (SELECT 1 FROM {_q(parent.name)} {other} WHERE {where}))"
        )
    return conditions


KEPT = "_kept"  # the column of dump_query telling a live row whose references are kept


def dump_query(spec: ModelSpec, *, include_deleted: bool) -> str:
    """Return the SELECT that streams ``spec``'s rows in key order.

    Without deleted rows, it selects the live rows, and when the table references others,
    a last column ``_kept`` that is false for a row referencing a left-out row: the dump
    skips those and counts them.
    """
    columns = [f"t.{_q(c.name)}" for c in spec.columns]
    for index, many in enumerate(spec.many):
        target_join = ""
        if not include_deleted:  # only targets the dump keeps
            keep = _included(many.target, f"m{index}", (many.target.name,), [0])
            target_join = (
                f" AND EXISTS (SELECT 1 FROM {_q(many.target.name)} m{index} "
                f"WHERE m{index}.id = s{index}.{_q(many.remote)} AND {keep})"
            )
        columns.append(
            f"ARRAY(SELECT s{index}.{_q(many.remote)} FROM {_q(many.table.name)} s{index} "
            f"WHERE s{index}.{_q(many.local)} = t.{_q(spec.pk)}{target_join} "
            f"ORDER BY s{index}.{_q(many.remote)}) AS {_q(many.name)}"
        )
    where = ""
    if not include_deleted:
        live = _live(spec.table, "t")
        where = f" WHERE {' AND '.join(live)}" if live else ""
        references = _references_kept(spec.table, "t", (spec.table.name,), [0])
        if references:
            columns.append(f"({' AND '.join(references)}) AS {KEPT}")
    return (
        f"SELECT {', '.join(columns)} FROM {_q(spec.table.name)} t{where} ORDER BY t.{_q(spec.pk)}"
    )


def _encode(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError("not finite")
        return str(value)
    raise TypeError(f"cannot write a {type(value).__name__} to a fixture")


# allow_nan=False: NaN and Infinity are not JSON, and loaddata would refuse them.
_encoder = json.JSONEncoder(ensure_ascii=False, default=_encode, allow_nan=False)


def _not_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Decimal):
        return not value.is_finite()
    if isinstance(value, dict):
        return any(_not_finite(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_not_finite(v) for v in value)
    return False


async def _json_codecs(conn: asyncpg.Connection) -> None:
    # JSON columns arrive as Python values, in PostgreSQL's canonical key order.
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(kind, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def require_tables(conn: asyncpg.Connection, tables: Sequence[Table]) -> None:
    """Fail with one line saying to migrate when a table of ``tables`` does not exist."""
    names = list(dict.fromkeys(t.name for t in tables))
    missing = await conn.fetchval(
        "SELECT array_agg(n ORDER BY i) FROM unnest($1::text[]) WITH ORDINALITY AS u(n, i) "
        "WHERE to_regclass(quote_ident(n)) IS NULL",
        names,
    )
    if missing:
        which = "" if len(missing) == len(names) else f" (it has no table {missing[0]})"
        raise FixtureError(f"the database is not migrated{which}; run `manage.py migrate` first")


def _tables(specs: Sequence[ModelSpec]) -> list[Table]:
    return [t for spec in specs for t in (spec.table, *(m.table for m in spec.many))]


async def dump_records(
    conn: asyncpg.Connection,
    specs: Sequence[ModelSpec],
    *,
    include_deleted: bool,
    left_out: dict[str, int] | None = None,
) -> AsyncIterator[str]:
    """Yield each record as one line of JSON, model by model, streamed from the server.

    ``left_out`` counts, by table, the live rows skipped for referencing a left-out row.
    """
    await _json_codecs(conn)
    for spec in specs:
        names = [c.name for c in spec.columns] + [m.name for m in spec.many]
        pk_index = names.index(spec.pk)
        pairs = [(i, n) for i, n in enumerate(names) if i != pk_index]
        head = '{"model": ' + json.dumps(spec.label) + ', "pk": '
        encode = _encoder.encode
        query = dump_query(spec, include_deleted=include_deleted)
        has_kept = not include_deleted and _references_kept(
            spec.table, "t", (spec.table.name,), [0]
        )
        kept = len(names) if has_kept else -1
        skipped = 0
        async for row in conn.cursor(query, prefetch=PREFETCH):
            if kept >= 0 and not row[kept]:
                skipped += 1
                continue
            fields = {n: row[i] for i, n in pairs}
            try:
                text = encode(fields)
            except ValueError:
                name = next(n for n, v in fields.items() if _not_finite(v))
                raise FixtureError(
                    f"cannot dump {spec.label} {row[pk_index]}: field {name} holds "
                    f"{fields[name]!r}, which JSON cannot hold (NaN or Infinity)"
                ) from None
            yield f'{head}"{row[pk_index]}", "fields": {text}}}'
        if skipped and left_out is not None:
            left_out[spec.table.name] = left_out.get(spec.table.name, 0) + skipped


OUTPUT_FORMATS = ".json, .jsonl, .json.gz or .jsonl.gz"


class _Output:
    """Where a dump goes: stdout, or a temporary file beside ``path`` that replaces it
    only when the dump succeeds, so a failed dump leaves an existing file alone."""

    def __init__(self, path: Path | None) -> None:
        import os
        import sys
        import tempfile

        self.path = path
        self.temp: Path | None = None
        if path is None:
            self.stream: IO[str] = sys.stdout
            return
        if not _is_json_name(path.name):
            raise FixtureError(f"cannot write {path}: unknown fixture format; use {OUTPUT_FORMATS}")
        try:
            mode = path.stat().st_mode & 0o7777
        except OSError:
            mask = os.umask(0)
            os.umask(mask)
            mode = 0o666 & ~mask
        try:
            fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
        except OSError as error:
            raise FixtureError(f"cannot write {path}: {error.strerror}") from None
        self.temp = Path(name)
        os.fchmod(fd, mode)
        raw = os.fdopen(fd, "wb")
        if path.suffix == ".gz":
            # mtime=0 and no file name in the header: the same data gives the same bytes.
            compressed = gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)
            self.stream = io.TextIOWrapper(compressed, encoding="utf-8", newline="\n")
        else:
            self.stream = io.TextIOWrapper(raw, encoding="utf-8", newline="\n")

    def commit(self) -> None:
        """Finish the output: flush stdout, or close the file and move it into place."""
        if self.temp is None or self.path is None:
            self.stream.flush()
            return
        try:
            self.stream.close()
            self.temp.replace(self.path)
        except OSError as error:
            self.discard()
            raise FixtureError(f"cannot write {self.path}: {error.strerror}") from None
        self.temp = None

    def discard(self) -> None:
        """Drop a file output that failed; stdout gets what was already written."""
        if self.temp is None:
            self.stream.flush()
            return
        with contextlib.suppress(Exception):
            self.stream.close()
        self.temp.unlink(missing_ok=True)
        self.temp = None


def _is_json_name(name: str) -> bool:
    return name.removesuffix(".gz").endswith((".json", ".jsonl"))


def _is_jsonl(path: Path) -> bool:
    return path.name.removesuffix(".gz").endswith(".jsonl")


@dataclass(frozen=True)
class DumpReport:
    """What a dump wrote, and which live rows it left out."""

    records: int
    left_out: dict[str, int]

    def note(self) -> str | None:
        """Return the line on the rows left out for referencing a left-out row (or None)."""
        if not self.left_out:
            return None
        parts = [f"{count} {table}" for table, count in self.left_out.items()]
        listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        return (
            f"Note: left out {listed} that reference soft-deleted rows; "
            "--include-deleted keeps them"
        )


async def dump(
    url: DatabaseURL,
    names: Sequence[str] = (),
    output: Path | None = None,
    *,
    include_deleted: bool = False,
) -> DumpReport:
    """Write the models ``names`` (all when empty) to ``output`` (stdout, also for ``-``).

    One REPEATABLE READ snapshot covers every table, so the dump is consistent. A file is
    written beside ``output`` and renamed over it on success; stdout gets nothing until
    the first query has run.
    """
    from project.db import admin as dbadmin

    specs = select_models(model_specs(), names)
    if output is not None and str(output) == "-":
        output = None
    lines = output is not None and _is_jsonl(output)
    out = _Output(output)  # before connecting: a place it cannot write fails first
    count = 0
    left_out: dict[str, int] = {}
    try:
        conn = await dbadmin.connect(url)
        try:
            await require_tables(conn, _tables(specs))
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                started = False

                def write(text: str) -> None:
                    nonlocal started
                    if not started and not lines:  # only once the first query has run
                        text = "[" + text
                    started = True
                    out.stream.write(text)

                buffer: list[str] = []
                records = dump_records(
                    conn, specs, include_deleted=include_deleted, left_out=left_out
                )
                async for record in records:
                    buffer.append(f"{record}\n" if lines else (",\n" if count else "\n") + record)
                    count += 1
                    if len(buffer) >= PREFETCH:
                        write("".join(buffer))
                        buffer.clear()
                write("".join(buffer) + ("" if lines else "\n]\n"))
        finally:
            await conn.close()
    except BaseException:
        out.discard()
        raise
    out.commit()
    return DumpReport(count, left_out)


# --- reading fixture files ----------------------------------------------------------------


def _binary(path: Path) -> IO[bytes]:
    try:
        raw: IO[bytes] = path.open("rb")
    except OSError as error:
        raise FixtureError(f"{path}: cannot read: {error.strerror}") from None
    if path.suffix == ".gz":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def _read_error(path: Path, error: Exception) -> FixtureError:
    if isinstance(error, EOFError):
        return FixtureError(f"{path}: truncated: the compressed data ends early")
    if isinstance(error, gzip.BadGzipFile | OSError):
        return FixtureError(f"{path}: not a valid gzip file ({error})")
    if isinstance(error, UnicodeDecodeError):
        return FixtureError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})")
    raise error


def iter_records(path: Path) -> Iterator[tuple[str, Any]]:
    """Yield ``(where, record)`` from a fixture file, ``where`` naming its place in it.

    ``.jsonl`` is read line by line and ``.json`` (one array) chunk by chunk, so a file
    is never held whole in memory.
    """
    name = path.name.removesuffix(".gz")
    if not (name.endswith(".json") or name.endswith(".jsonl")):
        raise FixtureError(f"{path}: unknown fixture format; use .json or .jsonl, optionally .gz")
    stream = _binary(path)
    try:
        if name.endswith(".jsonl"):
            yield from _jsonl(path, stream)
        else:
            yield from _json_array(path, stream)
    except (EOFError, OSError, UnicodeDecodeError) as error:
        raise _read_error(path, error) from None
    finally:
        stream.close()


def _jsonl(path: Path, stream: IO[bytes]) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise FixtureError(f"{path}, line {number}: malformed JSON: {error.msg}") from None
        yield f"line {number}", record


def _json_array(path: Path, stream: IO[bytes]) -> Iterator[tuple[str, Any]]:
    decoder = json.JSONDecoder()
    text = io.TextIOWrapper(stream, encoding="utf-8")
    buffer = ""
    position = 0
    done = False

    def more() -> bool:
        nonlocal buffer, position, done
        if done:
            return False
        chunk = text.read(CHUNK)
        buffer = buffer[position:] + chunk
        position = 0
        done = not chunk
        return bool(chunk)

    def skip_space() -> str:
        nonlocal position
        while True:
            while position < len(buffer) and buffer[position] in " \t\r\n":
                position += 1
            if position < len(buffer):
                return buffer[position]
            if not more():
                return ""

    more()
    if skip_space() != "[":
        raise FixtureError(f"{path}: malformed JSON: expected a list of records")
    position += 1
    number = 0
    while True:
        mark = skip_space()
        if mark == "]" and number == 0:
            position += 1
            break
        if number:
            if mark == "]":
                position += 1
                break
            if mark != ",":
                where = "truncated" if mark == "" else "expected ',' or ']'"
                raise FixtureError(f"{path}, after record {number}: malformed JSON: {where}")
            position += 1
            skip_space()
        number += 1
        while True:
            try:
                record, end = decoder.raw_decode(buffer, position)
            except json.JSONDecodeError as error:
                if more():  # the record may continue in the next chunk
                    continue
                problem = "truncated" if error.pos >= len(buffer) - 1 else error.msg
                raise FixtureError(f"{path}, record {number}: malformed JSON: {problem}") from None
            break
        position = end
        yield f"record {number}", record
    if skip_space() != "":
        raise FixtureError(f"{path}: malformed JSON: text after the list of records")


# --- checking values ----------------------------------------------------------------------

# An escaped NUL in JSON text: \u0000 after an even number of backslashes.
_JSON_NUL = re.compile(r"(?<!\\)(?:\\\\)*\\u0000")
_dumps = json.JSONEncoder(allow_nan=False).encode  # json.dumps' output, never NaN


def _integer_range(kind: Any) -> tuple[int, int]:
    from sqlalchemy import types

    bits = (
        16
        if isinstance(kind, types.SmallInteger)
        else 64
        if isinstance(kind, types.BigInteger)
        else 32
    )
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _kind_name(kind: Any) -> str:
    from sqlalchemy import types

    if isinstance(kind, types.SmallInteger):
        return "smallint"
    return "bigint" if isinstance(kind, types.BigInteger) else "integer"


def _parser(column: Column[Any]) -> Callable[[Any], Any]:
    """Return a function that checks a fixture value for ``column`` and returns what COPY
    sends for it (through seeding's converters); it raises ValueError on a bad value."""
    from sqlalchemy import types

    from project.orm.types import EnumString
    from project.seeding import wire_converter

    kind = column.type
    to_wire = wire_converter(column)

    def need(value: Any, expected: type | tuple[type, ...], what: str) -> None:
        if not isinstance(value, expected) or (
            isinstance(value, bool)
            and bool not in (expected if isinstance(expected, tuple) else (expected,))
        ):
            raise ValueError(f"{value!r} is not {what}")

    check: Callable[[Any], Any]
    if isinstance(kind, EnumString):

        def check(value: Any) -> Any:
            need(value, str, "a string")
            return kind.coerce(value).value

        return check
    if isinstance(kind, types.JSON):

        def check(value: Any) -> Any:
            try:
                # What seeding's converter sends, refusing what PostgreSQL cannot store.
                text = _dumps(value)
            except ValueError:
                raise ValueError("holds a number that is not finite (NaN or Infinity)") from None
            if "\\u0000" in text and _JSON_NUL.search(text):
                raise ValueError("holds a NUL character (\\u0000), which PostgreSQL cannot store")
            return text

        return check
    if isinstance(kind, types.Uuid):

        def check(value: Any) -> Any:
            need(value, str, "a UUID")
            try:
                return uuid.UUID(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a UUID") from None

        return check
    if isinstance(kind, types.DateTime):
        aware = bool(kind.timezone)

        def check(value: Any) -> Any:
            need(value, str, "a date and time")
            try:
                parsed = datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not an ISO 8601 date and time") from None
            if aware:
                if parsed.tzinfo is None:
                    raise ValueError(f"{value!r} has no time zone")
                try:  # what the driver sends; PostgreSQL stores it in UTC
                    parsed = parsed.astimezone(UTC)
                except OverflowError:
                    raise ValueError(f"{value!r} is out of range in UTC") from None
            return parsed

        return check
    if isinstance(kind, types.Boolean):

        def check(value: Any) -> Any:
            need(value, bool, "true or false")
            return value

        return check
    if isinstance(kind, types.Integer):
        low, high = _integer_range(kind)
        out_of_range = f"is out of range for {_kind_name(kind)} ({low} to {high})"

        def check(value: Any) -> Any:
            need(value, int, "an integer")
            if not low <= value <= high:
                raise ValueError(f"{value} {out_of_range}")
            return value

        return check
    if isinstance(kind, types.Float | types.Numeric):

        def check(value: Any) -> Any:
            need(value, (int, float), "a number")
            try:
                number = float(value)
            except OverflowError:
                number = math.inf
            if not math.isfinite(number):
                raise ValueError(f"{value!r} is not a finite number")
            return number

        return check
    if isinstance(kind, types.String):
        length = kind.length

        def check(value: Any) -> Any:
            need(value, str, "a string")
            if length is not None and len(value) > length:
                raise ValueError(f"is {len(value)} characters long; at most {length} fit")
            if "\x00" in value:
                raise ValueError("holds a NUL character (\\x00), which PostgreSQL cannot store")
            return value

        return check
    return to_wire or (lambda value: value)


@dataclass
class _Stage:
    """A temporary table collecting one table's rows, and its rows not yet copied."""

    name: str
    columns: list[str]
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    created: bool = False


class _Loader:
    """Check records and stage them; then write the tables in dependency order."""

    def __init__(self, conn: asyncpg.Connection, specs: dict[str, ModelSpec]) -> None:
        self.conn = conn
        self.specs = specs
        self.lowered = {label.lower(): spec for label, spec in specs.items()}
        self.files: list[Path] = []
        self.stages: dict[str, _Stage] = {}
        self.records = 0
        self.in_file = 0  # the current record's number in its file
        self.parsers = {
            label: {c.name: _parser(c) for c in spec.columns} for label, spec in specs.items()
        }
        self.defaults = {
            label: {c.name: self._missing(c) for c in spec.columns} for label, spec in specs.items()
        }

    @staticmethod
    def _missing(column: Column[Any]) -> Callable[[], Any] | None:
        """Return what a record that leaves ``column`` out gets (None: it must not)."""
        from project.seeding import client_default, wire_converter

        if column.default is not None:
            make, to_wire = client_default(column), wire_converter(column)
            return (lambda: to_wire(make())) if to_wire else make
        if column.server_default is not None or column.nullable:
            return lambda: None  # the INSERT fills server defaults in (see _insert)
        return None

    def stage_for(self, table: Table, extra: Sequence[str] = ()) -> _Stage:
        """Return the staging area of ``table``."""
        if table.name not in self.stages:
            columns = [*(c.name for c in table.columns), *extra, "_file", "_record"]
            self.stages[table.name] = _Stage(STAGE_PREFIX + table.name, columns)
        return self.stages[table.name]

    async def add(self, path: Path, where: str, record: Any) -> None:
        """Check one record and stage its rows."""
        from project.db.inspection import did_you_mean

        def fail(message: str) -> FixtureError:
            return FixtureError(f"{path}, {where}: {message}")

        if not isinstance(record, dict):
            raise fail("a record must be an object with model, pk and fields")
        unknown_keys = set(record) - {"model", "pk", "fields"}
        if unknown_keys or not isinstance(record.get("model"), str):
            raise fail("a record must be an object with model, pk and fields")
        spec = self.lowered.get(record["model"].lower())
        if spec is None:
            error = did_you_mean("model", record["model"], list(self.specs))
            raise fail(str(error))
        fields = record.get("fields", {})
        if not isinstance(fields, dict):
            raise fail("fields must be an object")
        pk = record.get("pk")
        label = f"{spec.label} {pk}" if pk is not None else spec.label
        allowed = spec.fields
        for name in fields:
            if name not in allowed:
                error = did_you_mean(f"field of {spec.label}", name, allowed)
                raise fail(f"{label}: {error}")
        parsers, defaults = self.parsers[spec.label], self.defaults[spec.label]
        file_index = len(self.files) - 1
        self.records += 1
        self.in_file += 1
        values: list[Any] = []
        for column in spec.columns:
            name = column.name
            given = pk if name == spec.pk else fields.get(name, ...)
            if given is None and name == spec.pk:
                given = ...  # no key: a new row with a fresh one
            if given is ...:
                missing = defaults[name]
                if missing is None:
                    raise fail(f"{label}: field {name} is missing")
                values.append(missing())
                continue
            if given is None:
                if not column.nullable:
                    raise fail(f"{label}: field {name} must not be null")
                values.append(None)
                continue
            try:
                values.append(parsers[name](given))
            except ValueError as error:
                raise fail(f"{label}: field {name}: {error}") from None
        key = values[[c.name for c in spec.columns].index(spec.pk)]
        await self.put(self.stage_for(spec.table), (*values, file_index, self.in_file))
        for many in spec.many:
            if many.name not in fields:
                continue
            targets = fields[many.name]
            if not isinstance(targets, list):
                raise fail(f"{label}: field {many.name} must be a list of keys")
            stage = self.stage_for(many.table)
            # A row with no target marks the set as given: the load replaces it.
            marker = {many.local: key, many.remote: None}
            await self.put(stage, self._m2m_row(many, marker, file_index))
            for target in targets:
                try:
                    target_key = uuid.UUID(target) if isinstance(target, str) else None
                except ValueError:
                    target_key = None
                if target_key is None:
                    raise fail(f"{label}: field {many.name}: {target!r} is not a UUID")
                row = {many.local: key, many.remote: target_key}
                await self.put(stage, self._m2m_row(many, row, file_index))

    def _m2m_row(self, many: ManyToMany, row: dict[str, Any], file_index: int) -> tuple[Any, ...]:
        return (*(row.get(c.name) for c in many.table.columns), file_index, self.in_file)

    async def put(self, stage: _Stage, row: tuple[Any, ...]) -> None:
        """Stage ``row``, copying a full batch to the server."""
        from project.seeding import BATCH_SIZE

        stage.rows.append(row)
        if len(stage.rows) >= BATCH_SIZE:
            await self.flush(stage)

    async def flush(self, stage: _Stage) -> None:
        """Copy ``stage``'s pending rows into its temporary table (created on first use)."""
        from project.seeding import copy_records

        if not stage.created:
            table = stage.name.removeprefix(STAGE_PREFIX)
            await self.conn.execute(
                f"CREATE TEMPORARY TABLE {_q(stage.name)} ON COMMIT DROP AS "
                f"SELECT * FROM {_q(table)} WITH NO DATA;"
                f"ALTER TABLE {_q(stage.name)} ADD COLUMN _file integer, ADD COLUMN _record bigint"
            )
            stage.created = True
        import asyncpg

        try:
            await copy_records(self.conn, stage.name, stage.columns, stage.rows)
        except (asyncpg.PostgresError, OverflowError, ValueError, TypeError) as error:
            # The checks should have caught it; name the batch's records at least.
            first, last = stage.rows[0], stage.rows[-1]
            table = stage.name.removeprefix(STAGE_PREFIX)
            where = f"{self.files[first[-2]]}, record {first[-1]}"
            if last[-2] != first[-2]:
                where += f" to {self.files[last[-2]]}, record {last[-1]}"
            elif last[-1] != first[-1]:
                where += f" to {last[-1]}"
            raise FixtureError(
                f"{where} ({table}): cannot store a value: {type(error).__name__}: {error}"
            ) from None
        stage.rows = []

    async def write(self) -> int:
        """Write the staged rows into their tables in dependency order; return how many
        rows were inserted or changed."""
        from project.models import Base

        for stage in self.stages.values():
            await self.flush(stage)
        written = 0
        owners = {m.table.name: (s, m) for s in self.specs.values() for m in s.many}
        for table in Base.metadata.sorted_tables:
            if table.name not in self.stages:
                continue
            await self.check_references(table)
            if table.name in owners:
                written += await self._write_many(*owners[table.name])
            else:
                written += await self._upsert(table)
        return written

    async def check_references(self, table: Table) -> None:
        """Fail on the first staged row whose foreign key matches no row: its parents are
        already written, so their table holds both what was loaded and what was there."""
        stage = _q(self.stages[table.name].name)
        for fk in sorted(table.foreign_key_constraints, key=lambda c: str(c.name)):
            pairs = [(e.parent.name, e.column.name) for e in fk.elements]
            present = " AND ".join(f"s.{_q(c)} IS NOT NULL" for c, _ in pairs)
            match = " AND ".join(f"p.{_q(r)} = s.{_q(c)}" for c, r in pairs)
            row = await self.conn.fetchrow(
                f"SELECT s._file, s._record, {', '.join(f's.{_q(c)}::text' for c, _ in pairs)} "
                f"FROM {stage} s WHERE {present} AND NOT EXISTS "
                f"(SELECT 1 FROM {_q(fk.referred_table.name)} p WHERE {match}) "
                "ORDER BY s._file, s._record LIMIT 1"
            )
            if row is not None:
                raise self._dangling(table, row, pairs, fk.referred_table.name)

    def _dangling(
        self, table: Table, row: Any, pairs: list[tuple[str, str]], parent: str
    ) -> FixtureError:
        values = ", ".join(f"{c}={row[2 + i]}" for i, (c, _) in enumerate(pairs))
        path = self.files[row["_file"]]
        return FixtureError(
            f"{path}, record {row['_record']} ({table.name}): {values} matches no row of {parent}"
        )

    def _upsert_rows(self, table: Table) -> str:
        """Return the SELECT of the rows the upsert writes into ``table``, one per key (the
        last loaded), with the record each comes from in ``_file`` and ``_record``."""
        from sqlalchemy.dialects import postgresql

        stage = _q(self.stages[table.name].name)
        (pk,) = table.primary_key.columns
        dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
        values = []
        for column in table.columns:
            value = f"s.{_q(column.name)}"
            default = column.server_default
            if default is not None and not column.nullable:  # left out of the record
                arg = default.arg  # type: ignore[attr-defined]
                sql = (
                    "'" + arg.replace("'", "''") + "'"
                    if isinstance(arg, str)
                    else str(arg.compile(dialect=dialect))
                )
                value = f"coalesce({value}, {sql})"
            values.append(f"{value} AS {_q(column.name)}")
        return (
            f"SELECT DISTINCT ON (s.{_q(pk.name)}) {', '.join(values)}, s._file, s._record "
            f"FROM {stage} s ORDER BY s.{_q(pk.name)}, s._file DESC, s._record DESC"
        )

    async def _upsert(self, table: Table) -> int:
        (pk,) = table.primary_key.columns
        names = [c.name for c in table.columns]
        changed = [n for n in names if n != pk.name]
        listed = ", ".join(map(_q, names))
        statement = (
            f"INSERT INTO {_q(table.name)} AS t ({listed}) "
            f"SELECT {listed} FROM ({self._upsert_rows(table)}) s "
            f"ON CONFLICT ({_q(pk.name)}) DO UPDATE SET "
            + ", ".join(f"{_q(n)} = EXCLUDED.{_q(n)}" for n in changed)
            + f" WHERE ({', '.join(f't.{_q(n)}' for n in changed)}) IS DISTINCT FROM "
            f"({', '.join(f'EXCLUDED.{_q(n)}' for n in changed)})"
        )
        return await self._run(statement, table)

    async def _write_many(self, owner: ModelSpec, many: ManyToMany) -> int:
        stage = _q(self.stages[many.table.name].name)
        local, remote, link = _q(many.local), _q(many.remote), _q(many.table.name)
        removed = await self._run(
            f"DELETE FROM {link} a USING (SELECT DISTINCT {local} FROM {stage}) given "
            f"WHERE a.{local} = given.{local} AND NOT EXISTS (SELECT 1 FROM {stage} s "
            f"WHERE s.{local} = a.{local} AND s.{remote} = a.{remote})",
            many.table,
        )
        added = await self._run(
            f"INSERT INTO {link} ({local}, {remote}) SELECT DISTINCT {local}, {remote} "
            f"FROM {stage} WHERE {remote} IS NOT NULL ON CONFLICT DO NOTHING",
            many.table,
        )
        return removed + added

    async def _run(self, statement: str, table: Table) -> int:
        import asyncpg

        try:
            # A savepoint, so that the staged rows can still be read to name the culprit.
            async with self.conn.transaction():
                status = await self.conn.execute(statement)
        except asyncpg.CheckViolationError as error:
            raise await self._check_violation(table, error) from None
        except asyncpg.IntegrityConstraintViolationError as error:
            raise await self._violation(table, error) from None
        except asyncpg.PostgresError as error:
            raise self._table_error(table, f"{type(error).__name__}: {error}") from None
        return int(status.rsplit(" ", 1)[-1])

    def _table_error(self, table: Table, problem: str) -> FixtureError:
        files = ", ".join(map(str, self.files))
        return FixtureError(f"{files}: the rows for {table.name}: {problem}")

    async def _check_violation(self, table: Table, error: Any) -> FixtureError:
        """Return the error for a CHECK constraint a row broke, naming the first record
        whose row, as the upsert writes it, fails the constraint's expression."""
        name = error.constraint_name
        detail = getattr(error, "detail", None) or ""
        broke = f"breaks {name}" + (f" ({detail})" if detail else "")
        stage = self.stages.get(table.name)
        definition = await self.conn.fetchval(
            "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
            "WHERE c.conrelid = $1::regclass AND c.conname = $2 AND c.contype = 'c'",
            _q(table.name),
            name,
        )
        found = definition and re.fullmatch(r"CHECK \((.*)\)( NOT VALID)?", definition, re.S)
        if stage is not None and found and table.name not in self._links():
            rows = self._upsert_rows(table)
            row = await self.conn.fetchrow(
                f"SELECT _file, _record FROM ({rows}) s WHERE NOT ({found[1]}) "
                "ORDER BY _file, _record LIMIT 1"
            )
            if row is not None:
                path = self.files[row["_file"]]
                return FixtureError(f"{path}, record {row['_record']} ({table.name}): {broke}")
        return self._table_error(table, broke)

    def _links(self) -> set[str]:
        return {m.table.name for s in self.specs.values() for m in s.many}

    async def _violation(self, table: Table, error: Any) -> FixtureError:
        """Return the error for a constraint a table's rows broke, naming the record whose
        key PostgreSQL reports (the last loaded one with that value)."""
        detail = getattr(error, "detail", None) or ""
        broke = f"breaks {error.constraint_name}" + (f" ({detail})" if detail else "")
        found = re.match(r"Key \((\w+)\)=\((.*)\)", detail)
        stage = self.stages.get(table.name)
        if found and stage is not None and found[1] in stage.columns:
            row = await self.conn.fetchrow(
                f"SELECT _file, _record FROM {_q(stage.name)} WHERE {_q(found[1])}::text = $1 "
                "ORDER BY _file DESC, _record DESC LIMIT 1",
                found[2],
            )
            if row is not None:
                path = self.files[row["_file"]]
                return FixtureError(f"{path}, record {row['_record']} ({table.name}): {broke}")
        files = ", ".join(map(str, self.files))
        return FixtureError(f"{files}: the rows for {table.name}: {broke}")


@dataclass(frozen=True)
class LoadReport:
    """What a load read and wrote."""

    records: int
    files: int
    written: int

    def line(self) -> str:
        """Return the one-line summary."""
        files = "1 file" if self.files == 1 else f"{self.files} files"
        written = f"{self.written} rows inserted or changed"
        return f"Loaded {self.records} records from {files}; {written}"


async def load(url: DatabaseURL, paths: Sequence[Path]) -> LoadReport:
    """Load fixture files in one transaction: all of them, or nothing."""
    from project.db import admin as dbadmin

    if not paths:
        raise FixtureError("name at least one fixture file")
    specs = model_specs()
    conn = await dbadmin.connect(url)
    try:
        await require_tables(conn, _tables(list(specs.values())))
        loader = _Loader(conn, specs)
        async with conn.transaction():
            for path in paths:
                loader.files.append(path)
                loader.in_file = 0
                for where, record in iter_records(path):
                    await loader.add(path, where, record)
            written = await loader.write()
    finally:
        await conn.close()
    return LoadReport(loader.records, len(paths), written)
