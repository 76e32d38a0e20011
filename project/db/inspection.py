"""What is in the database, one table, one model: ``showdb``, ``showtable``, ``showmodel``.

Each ``describe_*`` function returns a dataclass read from PostgreSQL's catalogs (or, for
a model, from SQLAlchemy's mapper); ``render_text`` and ``render_json`` turn any of them
into what the commands print. URLs are shown through ``DatabaseURL``'s masking ``str()``,
so no password is ever printed.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from project.exceptions import CommandError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import asyncpg
    from sqlalchemy.orm import Mapper

    from project.db.url import DatabaseURL


def did_you_mean(what: str, name: str, known: list[str]) -> CommandError:
    """Return the error for an unknown ``name``, suggesting the closest of ``known``."""
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return CommandError(f"unknown {what} {name!r}{hint}")


def human_bytes(size: int | None) -> str:
    """Return ``size`` in bytes as a short human-readable text."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# --- showdb -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSummary:
    """One table's estimated row count and sizes."""

    name: str
    estimated_rows: int | None  # None: never analyzed and no statistics yet
    table_bytes: int
    index_bytes: int


@dataclass(frozen=True)
class MigrationState:
    """Where the database is against the migrations."""

    current: list[str]
    heads: list[str]
    pending: int


@dataclass(frozen=True)
class DatabaseInfo:
    """What ``showdb`` reports."""

    url: str
    server_version: str
    database: str
    size_bytes: int
    connections: dict[str, int]
    migrations: MigrationState
    tables: list[TableSummary]
    # Each configured replica: url (masked), up, lag (seconds), replay_lsn, error.
    replicas: list[dict[str, Any]] = field(default_factory=list)


_TABLES_SQL = """
SELECT c.relname AS name,
       -- Never analyzed yet (reltuples -1): the statistics' live-row count instead.
       CASE WHEN c.reltuples < 0 THEN s.n_live_tup ELSE c.reltuples::bigint END
           AS estimated_rows,
       pg_table_size(c.oid) AS table_bytes,
       pg_indexes_size(c.oid) AS index_bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()
ORDER BY c.relname
"""


def _migration_state(current: list[str]) -> MigrationState:
    from project.migrate.config import script_directory

    script = script_directory()
    applied: set[str] = set()
    if current:
        applied = {rev.revision for rev in script.iterate_revisions(tuple(current), "base")}
    every = {rev.revision for rev in script.walk_revisions()}
    return MigrationState(sorted(current), sorted(script.get_heads()), len(every - applied))


async def _current_revisions(conn: asyncpg.Connection) -> list[str]:
    exists = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
    if not exists:
        return []
    return [row[0] for row in await conn.fetch("SELECT version_num FROM alembic_version")]


async def describe_database(
    url: DatabaseURL, replica_urls: Sequence[DatabaseURL] = ()
) -> DatabaseInfo:
    """Read the server, the database, its connections, migration state and tables, and
    each replica's state and lag."""
    from project.db import admin as dbadmin
    from project.db import replicas

    conn = await dbadmin.connect(url)
    try:
        version = await conn.fetchval("SHOW server_version")
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        states = await conn.fetch(
            "SELECT coalesce(state, 'unknown') AS state, count(*) AS n FROM pg_stat_activity "
            "WHERE datname = current_database() GROUP BY 1 ORDER BY 1"
        )
        tables = [TableSummary(**dict(row)) for row in await conn.fetch(_TABLES_SQL)]
        current = await _current_revisions(conn)
    finally:
        await conn.close()
    return DatabaseInfo(
        url=str(url),
        server_version=version,
        database=url.database,
        size_bytes=size,
        connections={row["state"]: row["n"] for row in states},
        migrations=_migration_state(current),
        tables=tables,
        replicas=[
            dataclasses.asdict(state) for state in await replicas.describe(url, replica_urls)
        ],
    )


def _replica_lines(states: list[dict[str, Any]]) -> list[str]:
    if not states:
        return ["Replicas   none configured"]
    lines = []
    for state in states:
        if state["up"]:
            lag = "?" if state["lag"] is None else f"{state['lag']:.1f} s"
            detail = f"lag {lag}, replayed {state['replay_lsn']}"
        else:
            detail = f"unreachable ({state['error']})"
        lines.append(f"Replica    {state['url']}: {detail}")
    return lines


def _database_lines(info: DatabaseInfo) -> list[str]:
    state = info.migrations
    current = ", ".join(state.current) or "none"
    heads = ", ".join(state.heads) or "none"
    connections = ", ".join(f"{n} {s}" for s, n in info.connections.items()) or "none"
    lines = [
        f"Database   {info.database} ({human_bytes(info.size_bytes)})",
        f"URL        {info.url}",
        f"Server     PostgreSQL {info.server_version}",
        f"Sessions   {connections}",
        f"Migrations current {current}; head {heads}; {state.pending} pending",
        *_replica_lines(info.replicas),
        "",
    ]
    if not info.tables:
        return [*lines, "(no tables)"]
    width = max(len("table"), *(len(t.name) for t in info.tables))
    lines.append(f"{'table':<{width}}  {'rows (est.)':>12}  {'table size':>10}  {'index size':>10}")
    for t in info.tables:
        rows = "?" if t.estimated_rows is None else str(t.estimated_rows)
        lines.append(
            f"{t.name:<{width}}  {rows:>12}  {human_bytes(t.table_bytes):>10}  "
            f"{human_bytes(t.index_bytes):>10}"
        )
    return lines


# --- showtable ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ColumnInfo:
    """One column of a table, as the database has it."""

    name: str
    type: str
    nullable: bool
    default: str | None


@dataclass(frozen=True)
class IndexInfo:
    """One index: its definition, flags and size."""

    name: str
    definition: str
    unique: bool
    primary: bool
    partial: bool
    valid: bool
    size_bytes: int


@dataclass(frozen=True)
class ConstraintInfo:
    """A foreign key (in or out) or a CHECK constraint."""

    name: str
    table: str  # the table the constraint is declared on
    definition: str
    references: str | None = None  # for a foreign key: the table it points at


@dataclass(frozen=True)
class TableInfo:
    """What ``showtable`` reports."""

    name: str
    model: str | None
    columns: list[ColumnInfo]
    indexes: list[IndexInfo]
    foreign_keys_out: list[ConstraintInfo]
    foreign_keys_in: list[ConstraintInfo]
    checks: list[ConstraintInfo]


_COLUMNS_SQL = """
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default
FROM pg_attribute a LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""
_INDEXES_SQL = """
SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS definition,
       i.indisunique AS unique, i.indisprimary AS primary, i.indpred IS NOT NULL AS partial,
       i.indisvalid AS valid, pg_relation_size(i.indexrelid) AS size_bytes
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE i.indrelid = $1 ORDER BY c.relname
"""
_CONSTRAINTS_SQL = """
SELECT conname AS name, conrelid::regclass::text AS table, pg_get_constraintdef(oid) AS definition,
       CASE WHEN contype = 'f' THEN confrelid::regclass::text END AS references
FROM pg_constraint WHERE {where} ORDER BY conrelid::regclass::text, conname
"""


def model_for_table(name: str) -> str | None:
    """Return the ``app.Model`` label of the model mapping table ``name``, if any."""
    for label, mapper in _mappers().items():
        if mapper.local_table.name == name:  # type: ignore[attr-defined]
            return label
    for mapper in _mappers().values():  # an association table: say whose it is
        for rel in mapper.relationships:
            if rel.secondary is not None and rel.secondary.name == name:  # type: ignore[attr-defined]
                return f"{model_label(mapper.class_)}.{rel.key} (association)"
    return None


async def describe_table(url: DatabaseURL, name: str) -> TableInfo:
    """Read table ``name``'s columns, indexes, constraints, and the model that maps it."""
    from project.db import admin as dbadmin

    conn = await dbadmin.connect(url)
    try:
        known = [row["name"] for row in await conn.fetch(_TABLES_SQL)]
        if name not in known:
            raise did_you_mean("table", name, known)
        oid = await conn.fetchval(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relname = $1 AND n.nspname = current_schema()",
            name,
        )
        columns = [ColumnInfo(**dict(r)) for r in await conn.fetch(_COLUMNS_SQL, oid)]
        indexes = [IndexInfo(**dict(r)) for r in await conn.fetch(_INDEXES_SQL, oid)]

        async def constraints(where: str) -> list[ConstraintInfo]:
            rows = await conn.fetch(_CONSTRAINTS_SQL.format(where=where), oid)
            return [ConstraintInfo(**dict(r)) for r in rows]

        out = await constraints("contype = 'f' AND conrelid = $1")
        incoming = await constraints("contype = 'f' AND confrelid = $1")
        checks = await constraints("contype = 'c' AND conrelid = $1")
    finally:
        await conn.close()
    return TableInfo(name, model_for_table(name), columns, indexes, out, incoming, checks)


def _table_lines(info: TableInfo) -> list[str]:
    lines = [f"Table {info.name}", f"Model {info.model or '(none)'}", "", "Columns"]
    width = max(len(c.name) for c in info.columns) if info.columns else 0
    type_width = max(len(c.type) for c in info.columns) if info.columns else 0
    for c in info.columns:
        null = "null" if c.nullable else "not null"
        default = f"  default {c.default}" if c.default is not None else ""
        lines.append(f"  {c.name:<{width}}  {c.type:<{type_width}}  {null:<8}{default}".rstrip())
    lines += ["", "Indexes"]
    for i in info.indexes:
        flags = [
            flag
            for flag, on in (
                ("primary", i.primary),
                ("unique", i.unique),
                ("partial", i.partial),
                ("INVALID", not i.valid),
            )
            if on
        ]
        mark = f" [{', '.join(flags)}]" if flags else ""
        lines.append(f"  {i.name}{mark} {human_bytes(i.size_bytes)}")
        lines.append(f"    {i.definition}")
    for title, items in (
        ("Foreign keys out", info.foreign_keys_out),
        ("Foreign keys in", info.foreign_keys_in),
        ("Checks", info.checks),
    ):
        lines += ["", title]
        lines += [f"  {c.name} on {c.table}: {c.definition}" for c in items] or ["  (none)"]
    return lines


# --- showmodel ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldInfo:
    """One mapped column of a model."""

    name: str
    column: str
    sql_type: str
    python_type: str
    nullable: bool
    primary_key: bool
    foreign_key: str | None


@dataclass(frozen=True)
class RelationshipInfo:
    """One relationship of a model."""

    name: str
    kind: str  # many-to-one, one-to-many, many-to-many, one-to-one
    target: str
    lazy: str
    secondary: str | None
    back_populates: str | None
    cascade: str


@dataclass(frozen=True)
class ModelInfo:
    """What ``showmodel`` reports."""

    label: str
    module: str
    table: str
    fields: list[FieldInfo]
    relationships: list[RelationshipInfo]
    mixins: list[str]
    soft_delete: bool
    versioned: bool
    soft_delete_cascade: list[str]


def model_label(cls: type[Any]) -> str:
    """Return ``app.Model`` for a model class: its app's label and the class name."""
    from project.apps import apps

    for config in apps.get_app_configs():
        if cls.__module__ == config.name or cls.__module__.startswith(config.name + "."):
            return f"{config.label}.{cls.__name__}"
    return f"{cls.__module__.rpartition('.')[0].rpartition('.')[2]}.{cls.__name__}"


def _mappers() -> dict[str, Mapper[Any]]:
    """Return every model's mapper by ``app.Model`` label, models loaded first."""
    from project.apps import apps
    from project.models import Base

    apps.load_models()
    return {model_label(m.class_): m for m in Base.registry.mappers}


def find_model(name: str) -> Mapper[Any]:
    """Return the mapper of model ``name`` (``Model`` or ``app.Model``, any case)."""
    mappers = _mappers()
    by_label = {label.lower(): m for label, m in mappers.items()}
    by_class: dict[str, list[Mapper[Any]]] = {}
    for m in mappers.values():
        by_class.setdefault(m.class_.__name__.lower(), []).append(m)
    key = name.lower()
    if key in by_label:
        return by_label[key]
    if len(by_class.get(key, [])) == 1:
        return by_class[key][0]
    if key in by_class:
        raise CommandError(f"model name {name!r} is ambiguous; use app.Model")
    known = [*mappers, *(m.class_.__name__ for m in mappers.values())]
    raise did_you_mean("model", name, known)


def _python_type(column: Any) -> str:
    from sqlalchemy.types import JSON

    from project.orm.types import EnumString

    if isinstance(column.type, EnumString):
        return column.type.enum_class.__name__
    if isinstance(column.type, JSON):
        return "JSON"
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return "Any"
    if kind.__module__ == "builtins":
        return str(kind.__name__)
    return f"{kind.__module__}.{kind.__qualname__}"


def _kind(rel: Any) -> str:
    direction = rel.direction.name
    if direction == "MANYTOONE":
        return "many-to-one"
    if direction == "MANYTOMANY":
        return "many-to-many"
    return "one-to-many" if rel.uselist else "one-to-one"


def describe_model(name: str) -> ModelInfo:
    """Describe model ``name`` from its mapper: table, columns, relationships, mixins."""
    from sqlalchemy.dialects import postgresql

    from project.models import Base, SoftDeleteMixin, VersionedMixin

    mapper = find_model(name)
    cls = mapper.class_
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    fields = []
    for attr in mapper.column_attrs:
        column = attr.columns[0]
        fks = sorted(fk.target_fullname for fk in column.foreign_keys)
        fields.append(
            FieldInfo(
                name=attr.key,
                column=column.name,
                sql_type=str(column.type.compile(dialect=dialect)),
                python_type=_python_type(column),
                nullable=bool(column.nullable),
                primary_key=bool(column.primary_key),
                foreign_key=", ".join(fks) or None,
            )
        )
    relationships = [
        RelationshipInfo(
            name=rel.key,
            kind=_kind(rel),
            target=model_label(rel.mapper.class_),
            lazy=str(rel.lazy),
            secondary=rel.secondary.name if rel.secondary is not None else None,  # type: ignore[attr-defined]
            back_populates=rel.back_populates,
            cascade=", ".join(sorted(rel.cascade)),
        )
        for rel in mapper.relationships
    ]
    own = {Base, cls, object}
    mixins = [
        k.__name__
        for k in cls.__mro__
        if k not in own and k.__module__ != "sqlalchemy.orm.decl_api" and not _is_sa_internal(k)
    ]
    return ModelInfo(
        label=model_label(cls),
        module=cls.__module__,
        table=mapper.local_table.name,  # type: ignore[attr-defined]
        fields=fields,
        relationships=relationships,
        mixins=mixins,
        soft_delete=issubclass(cls, SoftDeleteMixin),
        versioned=issubclass(cls, VersionedMixin),
        soft_delete_cascade=list(getattr(cls, "__soft_delete_cascade__", ())),
    )


def _is_sa_internal(cls: type[Any]) -> bool:
    return cls.__module__.startswith("sqlalchemy.") or cls.__name__ in {"Generic", "Protocol"}


def _model_lines(info: ModelInfo) -> list[str]:
    lines = [f"Model {info.label} ({info.module})", f"Table {info.table}", "", "Fields"]
    width = max(len(f.name) for f in info.fields)
    type_width = max(len(f.python_type) for f in info.fields)
    for f in info.fields:
        notes = [f.sql_type, "null" if f.nullable else "not null"]
        if f.primary_key:
            notes.append("primary key")
        if f.foreign_key:
            notes.append(f"-> {f.foreign_key}")
        lines.append(f"  {f.name:<{width}}  {f.python_type:<{type_width}}  {', '.join(notes)}")
    lines += ["", "Relationships"]
    for r in info.relationships:
        via = f" via {r.secondary}" if r.secondary else ""
        back = f", back_populates={r.back_populates}" if r.back_populates else ""
        lines.append(f"  {r.name}: {r.kind} -> {r.target}{via} (lazy={r.lazy}{back})")
    if not info.relationships:
        lines.append("  (none)")
    cascade = ", ".join(info.soft_delete_cascade) or "none"
    lines += [
        "",
        f"Mixins       {', '.join(info.mixins) or 'none'}",
        f"Soft delete  {'yes' if info.soft_delete else 'no'} (cascades to: {cascade})",
        f"Versioned    {'yes' if info.versioned else 'no'}",
    ]
    return lines


# --- rendering ----------------------------------------------------------------------------


def render_text(info: DatabaseInfo | TableInfo | ModelInfo) -> str:
    """Return ``info`` as readable text."""
    if isinstance(info, DatabaseInfo):
        return "\n".join(_database_lines(info))
    if isinstance(info, TableInfo):
        return "\n".join(_table_lines(info))
    return "\n".join(_model_lines(info))


def render_json(info: DatabaseInfo | TableInfo | ModelInfo) -> str:
    """Return ``info`` as indented JSON, for scripts."""
    return json.dumps(dataclasses.asdict(info), indent=2)
