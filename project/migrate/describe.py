"""Describe what autogenerate finds, one line per change: the operations a revision
``makemigrations`` writes holds, and the differences ``check`` reports."""

from __future__ import annotations

import re
from typing import Any


def _table(name: str | None, schema: str | None) -> str:
    return f"{schema}.{name}" if schema else str(name)


def _alterations(op: Any) -> str:
    """Return what an AlterColumnOp changes, e.g. ``type VARCHAR(20) -> TEXT, NOT NULL``."""
    changes = []
    if op.modify_type is not None:
        was = f"{op.existing_type} -> " if op.existing_type is not None else ""
        changes.append(f"type {was}{op.modify_type}")
    if op.modify_nullable is not None:
        changes.append("NULL allowed" if op.modify_nullable else "NOT NULL")
    if op.modify_server_default is not False:  # False means untouched; None means dropped
        changes.append("server default")
    if op.modify_comment is not False:
        changes.append("comment")
    if op.modify_name is not None:
        changes.append(f"renamed to {op.modify_name}")
    return ", ".join(changes)


def describe_operations(operations: Any) -> list[str]:
    """Return one line per Alembic operation in ``operations`` (an ``UpgradeOps`` or any
    op container), e.g. ``create table notes`` or ``add column notes.title``."""
    from alembic.operations import ops

    lines: list[str] = []
    for op in operations.ops:
        table = _table(getattr(op, "table_name", None), getattr(op, "schema", None))
        if isinstance(op, ops.ModifyTableOps | ops.OpContainer):
            lines += describe_operations(op)
        elif isinstance(op, ops.CreateTableOp):
            lines.append(f"create table {table}")
        elif isinstance(op, ops.DropTableOp):
            lines.append(f"drop table {table}")
        elif isinstance(op, ops.AddColumnOp):
            lines.append(f"add column {table}.{op.column.name}")
        elif isinstance(op, ops.DropColumnOp):
            lines.append(f"drop column {table}.{op.column_name}")
        elif isinstance(op, ops.AlterColumnOp):
            lines.append(f"alter column {table}.{op.column_name} ({_alterations(op)})")
        elif isinstance(op, ops.CreateIndexOp):
            columns = ", ".join(getattr(c, "name", None) or str(c) for c in op.columns)
            kind = "unique index" if op.unique else "index"
            lines.append(f"add {kind} {op.index_name} on {table} ({columns})")
        elif isinstance(op, ops.DropIndexOp):
            lines.append(f"drop index {op.index_name} on {table}")
        elif isinstance(op, ops.CreateForeignKeyOp):
            source = _table(op.source_table, op.kw.get("source_schema"))
            lines.append(f"add foreign key {op.constraint_name} on {source} -> {op.referent_table}")
        elif isinstance(op, ops.DropConstraintOp):
            lines.append(f"drop constraint {op.constraint_name} on {table}")
        elif isinstance(op, ops.ExecuteSQLOp):
            lines.append(f"run {' '.join(str(op.sqltext).split())}")
        else:  # e.g. CreateUniqueConstraintOp -> "create unique constraint NAME on TABLE"
            words = re.sub(r"(?<!^)(?=[A-Z])", " ", type(op).__name__.removesuffix("Op")).lower()
            name = getattr(op, "constraint_name", None) or getattr(op, "index_name", None)
            where = f" on {table}" if getattr(op, "table_name", None) else ""
            lines.append(f"{words}{f' {name}' if name else ''}{where}")
    return lines


def describe_diff(diff: Any) -> str:
    """Return one of autogenerate's differences (an entry of ``UpgradeOps.as_diffs()``,
    as ``alembic check`` reports them) as ``KIND NAME``, e.g. ``add_table notes``."""
    if isinstance(diff, list):  # column-level changes come grouped
        return "; ".join(describe_diff(d) for d in diff)
    kind, *rest = diff
    names = [getattr(x, "name", None) or getattr(x, "key", None) for x in rest]
    where = ".".join(str(n) for n in names if isinstance(n, str))
    return f"{kind} {where}".strip()
