"""Lint the migrations for operations that lock or rewrite a live table, or break the
code still running during a deploy.

The linter reads what PostgreSQL would run: the history's upgrade SQL rendered offline
(as ``migrate --sql`` prints it) and parsed by PostgreSQL's own parser (pglast), so raw
``op.execute`` SQL is covered like Alembic's operations. It walks the history from the
first revision, so it knows which tables each revision creates (an index on a table made
in the same revision is fine), the columns' types (a ``varchar`` widened to ``text`` does
not rewrite the table) and which CHECK constraints were validated (``SET NOT NULL`` then
skips its scan), and it compares drops and renames with the models (``Base.metadata``).

A revision marks an operation it has reviewed with a module-level literal, the rule's
name and why it is safe there::

    reviewed = {"index-without-concurrently": "audit_log has 40 rows; built in 2 ms"}

A reviewed finding is still shown, with its reason, but does not fail the lint.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from project.exceptions import CommandError

if TYPE_CHECKING:
    from sqlalchemy import MetaData


@dataclass(frozen=True)
class Rule:
    """A lint rule: its name, why the operation is dangerous, and the safe way."""

    name: str
    why: str
    instead: str


RULES: dict[str, Rule] = {
    rule.name: rule
    for rule in (
        Rule(
            "index-without-concurrently",
            "CREATE INDEX blocks every write to the table (SHARE lock) while the whole "
            "index is built",
            "CREATE INDEX CONCURRENTLY inside op.get_context().autocommit_block() "
            "(op.create_index(..., postgresql_concurrently=True)), in a revision of its own",
        ),
        Rule(
            "concurrently-in-transaction",
            "a CONCURRENTLY operation cannot run inside a transaction block: the revision fails",
            "run it inside op.get_context().autocommit_block()",
        ),
        Rule(
            "constraint-without-not-valid",
            "adding a foreign key or CHECK scans the whole table to validate it while "
            "holding a lock that blocks writes (and, for a foreign key, writes to the "
            "referenced table); validating it in the same transaction keeps that lock",
            "add it NOT VALID (postgresql_not_valid=True), then ALTER TABLE ... VALIDATE "
            "CONSTRAINT in another transaction (an autocommit_block or a later revision)",
        ),
        Rule(
            "set-not-null-without-check",
            "SET NOT NULL scans the whole table under an ACCESS EXCLUSIVE lock, blocking "
            "reads and writes",
            "add CHECK (column IS NOT NULL) NOT VALID, VALIDATE it in another transaction, "
            "then SET NOT NULL (PostgreSQL 12+ skips the scan) and drop the CHECK",
        ),
        Rule(
            "column-type-rewrite",
            "this type change rewrites the table and its indexes under an ACCESS "
            "EXCLUSIVE lock; running code may also not expect the new type",
            "add a column of the new type, backfill it in batches, switch the code over, "
            "then drop the old column (only varchar/numeric widenings and varchar->text "
            "are catalog-only)",
        ),
        Rule(
            "volatile-default",
            "ADD COLUMN with a volatile default (or serial, identity, a stored generated "
            "column) rewrites the whole table under an ACCESS EXCLUSIVE lock",
            "add the column without the default (or with a constant one), set the default "
            "with ALTER COLUMN ... SET DEFAULT, and backfill existing rows in batches",
        ),
        Rule(
            "drop-mapped",
            "the models still map this table or column: code running during the deploy "
            "(and this release) still reads and writes it",
            "remove it from the models and deploy that first; drop it in a later release",
        ),
        Rule(
            "rename-mapped",
            "renaming a table or column the models map breaks the code still running "
            "during the deploy, which uses the old name",
            "expand/contract: add the new column (or a view for a table), write both, "
            "backfill, switch reads, then drop the old one in a later release",
        ),
        Rule(
            "long-exclusive-lock",
            "this takes an ACCESS EXCLUSIVE (or EXCLUSIVE) lock for longer than a catalog "
            "change (a table rewrite or an index build), blocking reads and writes",
            "build the index CONCURRENTLY and attach it (ADD CONSTRAINT ... USING INDEX); "
            "use the CONCURRENTLY forms (REINDEX, REFRESH); avoid VACUUM FULL, CLUSTER, "
            "SET TABLESPACE and explicit LOCK TABLE in migrations",
        ),
        Rule(
            "unparsable-sql",
            "the revision's SQL could not be parsed, so none of it was checked",
            "fix the SQL, or review it by hand and mark it",
        ),
    )
}

#: Functions whose value differs per row: a default calling one fills every row.
VOLATILE_FUNCTIONS = frozenset(
    {
        "gen_random_uuid",
        "uuid_generate_v1",
        "uuid_generate_v1mc",
        "uuid_generate_v4",
        "uuidv4",
        "uuidv7",
        "random",
        "random_normal",
        "clock_timestamp",
        "timeofday",
        "nextval",
        "txid_current",
        "gen_random_bytes",
    }
)
_SERIAL = frozenset({"serial", "serial2", "serial4", "serial8", "smallserial", "bigserial"})
_STRONG_LOCKS = {7: "EXCLUSIVE", 8: "ACCESS EXCLUSIVE"}
_RUNNING = re.compile(r"^-- Running upgrade (.*?) -> (\S+)\s*$", re.MULTILINE)
_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class Finding:
    """One operation a rule flags, in one revision."""

    revision: str
    rule: str
    operation: str
    why: str
    instead: str
    reviewed: str | None = None  # the revision's reason, when marked

    def lines(self) -> list[str]:
        """Return the finding as it is printed: the operation, then why and instead."""
        mark = f" (reviewed: {self.reviewed})" if self.reviewed else ""
        return [
            f"{self.revision} {self.rule}: {self.operation}{mark}",
            f"    why: {self.why}",
            f"    instead: {self.instead}",
        ]


@dataclass(frozen=True)
class Verdict:
    """What the linter found in one revision."""

    revision: str
    message: str
    findings: tuple[Finding, ...] = ()

    @property
    def unsafe(self) -> tuple[Finding, ...]:
        """Return the findings not marked as reviewed."""
        return tuple(f for f in self.findings if f.reviewed is None)

    def summary(self) -> str:
        """Return the verdict in a few words: safe, unsafe (rules), reviewed (rules)."""
        if self.unsafe:
            return "unsafe: " + ", ".join(sorted({f.rule for f in self.unsafe}))
        if self.findings:
            return "reviewed: " + ", ".join(sorted({f.rule for f in self.findings}))
        return "safe"


def _name(relation: Any) -> str:
    """Return a RangeVar's name as the linter keys tables (schema-qualified if given)."""
    return f"{relation.schemaname}.{relation.relname}" if relation.schemaname else relation.relname


def _type(type_name: Any) -> tuple[str, tuple[int, ...]]:
    """Return a TypeName's base name and integer modifiers: ('varchar', (20,))."""
    names = [n.sval for n in type_name.names]
    base = names[-1]
    mods: list[int] = []
    for mod in type_name.typmods or ():
        value = getattr(getattr(mod, "val", None), "ival", None)
        mods.append(int(value) if value is not None else -1)
    aliases = {"character varying": "varchar", "int4": "integer", "int8": "bigint"}
    return aliases.get(base, base), tuple(mods)


def _widens(old: tuple[str, tuple[int, ...]], new: tuple[str, tuple[int, ...]]) -> bool:
    """Tell whether changing a column from ``old`` to ``new`` is catalog-only."""
    (old_base, old_mods), (new_base, new_mods) = old, new
    if old == new:
        return True
    if old_base in ("varchar", "text") and new_base == "text":
        return True
    if old_base == "varchar" and new_base == "varchar":
        return not new_mods or (bool(old_mods) and new_mods[0] >= old_mods[0])
    if old_base == "text" and new_base == "varchar":
        return not new_mods
    if old_base == "numeric" and new_base == "numeric":
        if not new_mods:
            return True
        old_scale = old_mods[1] if len(old_mods) > 1 else 0
        new_scale = new_mods[1] if len(new_mods) > 1 else 0
        return bool(old_mods) and new_mods[0] >= old_mods[0] and new_scale == old_scale
    return False


def _functions(node: Any) -> set[str]:
    """Return the names of the functions called anywhere in expression ``node``."""
    from pglast.ast import FuncCall
    from pglast.visitors import Visitor

    found: set[str] = set()

    class Collect(Visitor):
        def visit_FuncCall(self, ancestors: Any, call: FuncCall) -> None:
            found.add(str((call.funcname or ())[-1].sval).lower())

    if node is not None:
        Collect()(node)
    return found


def _not_null_column(expr: Any) -> str | None:
    """Return the column of a ``col IS NOT NULL`` expression, else None."""
    from pglast.ast import ColumnRef, NullTest
    from pglast.enums import NullTestType

    if (
        isinstance(expr, NullTest)
        and expr.nulltesttype == NullTestType.IS_NOT_NULL
        and isinstance(expr.arg, ColumnRef)
    ):
        return str((expr.arg.fields or ())[-1].sval)
    return None


@dataclass
class _History:
    """What the revisions before the current one did, as far as the rules care."""

    columns: dict[str, dict[str, tuple[str, tuple[int, ...]]]] = field(default_factory=dict)
    proven_not_null: dict[str, set[str]] = field(default_factory=dict)
    pending_checks: dict[tuple[str, str], str] = field(default_factory=dict)
    in_transaction: bool = False


class _Revision:
    """Lint one revision's statements against the history so far."""

    def __init__(self, revision: str, history: _History, mapped: Mapping[str, set[str]]) -> None:
        self.revision = revision
        self.history = history
        self.mapped = mapped
        self.created: set[str] = set()
        self.not_valid_now: set[tuple[str, str]] = set()  # added NOT VALID in this transaction
        self.findings: list[tuple[str, str, str | None]] = []  # rule, operation, why

    def flag(self, rule: str, operation: str, why: str | None = None) -> None:
        self.findings.append((rule, operation, why))

    def existing(self, table: str) -> bool:
        return table not in self.created and table != _VERSION_TABLE

    def statement(self, stmt: Any, text: str) -> None:
        from pglast import ast

        handler = {
            ast.TransactionStmt: self.transaction,
            ast.CreateStmt: self.create_table,
            ast.CreateTableAsStmt: self.create_table_as,
            ast.IndexStmt: self.index,
            ast.AlterTableStmt: self.alter_table,
            ast.RenameStmt: self.rename,
            ast.DropStmt: self.drop,
            ast.VacuumStmt: self.vacuum,
            ast.ClusterStmt: self.cluster,
            ast.ReindexStmt: self.reindex,
            ast.RefreshMatViewStmt: self.refresh,
            ast.LockStmt: self.lock,
        }.get(type(stmt))
        if handler is not None:
            handler(stmt, text)

    def transaction(self, stmt: Any, text: str) -> None:
        from pglast.enums import TransactionStmtKind as Kind

        if stmt.kind in (Kind.TRANS_STMT_BEGIN, Kind.TRANS_STMT_START):
            self.history.in_transaction = True
        elif stmt.kind in (Kind.TRANS_STMT_COMMIT, Kind.TRANS_STMT_ROLLBACK):
            self.history.in_transaction = False
            self.not_valid_now.clear()

    def create_table(self, stmt: Any, text: str) -> None:
        from pglast.ast import ColumnDef

        table = _name(stmt.relation)
        self.created.add(table)
        self.history.columns[table] = {
            str(element.colname): _type(element.typeName)
            for element in stmt.tableElts or ()
            if isinstance(element, ColumnDef) and element.typeName is not None
        }
        self.history.proven_not_null.pop(table, None)

    def create_table_as(self, stmt: Any, text: str) -> None:
        self.created.add(_name(stmt.into.rel))

    def index(self, stmt: Any, text: str) -> None:
        table = _name(stmt.relation)
        if stmt.concurrent:
            if self.history.in_transaction:
                self.flag("concurrently-in-transaction", text)
        elif self.existing(table):
            self.flag("index-without-concurrently", text)

    def alter_table(self, stmt: Any, text: str) -> None:
        table = _name(stmt.relation)
        for cmd in stmt.cmds or ():
            self.alter_command(table, cmd, text)

    def alter_command(self, table: str, cmd: Any, text: str) -> None:
        from pglast.enums import AlterTableType as At
        from pglast.enums import ConstrType

        existing = self.existing(table)
        columns = self.history.columns.setdefault(table, {})
        kind = cmd.subtype
        if kind == At.AT_AddColumn:
            column = cmd.def_
            if column.typeName is not None:
                columns[column.colname] = _type(column.typeName)
            if existing:
                self.add_column(column, text)
        elif kind == At.AT_AddConstraint:
            constraint = cmd.def_
            if constraint.contype in (ConstrType.CONSTR_FOREIGN, ConstrType.CONSTR_CHECK):
                checked = _not_null_column(constraint.raw_expr)
                if constraint.skip_validation:
                    self.not_valid_now.add((table, constraint.conname or ""))
                    if checked:
                        self.history.pending_checks[(table, constraint.conname or "")] = checked
                else:
                    if existing:
                        self.flag("constraint-without-not-valid", text)
                    if checked:
                        self.history.proven_not_null.setdefault(table, set()).add(checked)
            elif constraint.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
                if existing and not constraint.indexname:
                    self.flag("long-exclusive-lock", text, _INDEX_UNDER_LOCK)
            elif constraint.contype == ConstrType.CONSTR_EXCLUSION and existing:
                self.flag("long-exclusive-lock", text, _INDEX_UNDER_LOCK)
        elif kind == At.AT_ValidateConstraint:
            key = (table, cmd.name)
            if key in self.not_valid_now and existing:
                self.flag(
                    "constraint-without-not-valid",
                    text,
                    "VALIDATE in the transaction that added the constraint scans the table "
                    "while still holding the ADD's lock, which blocks writes",
                )
            checked = self.history.pending_checks.pop(key, None)
            if checked:
                self.history.proven_not_null.setdefault(table, set()).add(checked)
        elif kind == At.AT_SetNotNull:
            if existing and cmd.name not in self.history.proven_not_null.get(table, set()):
                self.flag("set-not-null-without-check", text)
        elif kind == At.AT_AlterColumnType:
            self.alter_type(table, cmd, columns, existing, text)
        elif kind == At.AT_DropColumn:
            columns.pop(cmd.name, None)
            if existing and cmd.name in self.mapped.get(table, set()):
                self.flag("drop-mapped", text)
        elif existing and kind in _rewriting():
            self.flag("long-exclusive-lock", text, "this rewrites the table under ACCESS EXCLUSIVE")

    def add_column(self, column: Any, text: str) -> None:
        from pglast.enums import ConstrType

        base, _ = _type(column.typeName) if column.typeName is not None else ("", ())
        if base in _SERIAL:
            self.flag("volatile-default", text, "a serial column fills every row from a sequence")
        for constraint in column.constraints or ():
            if constraint.contype == ConstrType.CONSTR_DEFAULT:
                volatile = _functions(constraint.raw_expr) & VOLATILE_FUNCTIONS
                if volatile:
                    self.flag(
                        "volatile-default",
                        text,
                        f"the default calls {', '.join(sorted(volatile))}(), which is volatile: "
                        "every existing row is rewritten with its own value under an ACCESS "
                        "EXCLUSIVE lock",
                    )
            elif constraint.contype in (ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED):
                self.flag("volatile-default", text)
            elif constraint.contype in (ConstrType.CONSTR_PRIMARY, ConstrType.CONSTR_UNIQUE):
                self.flag("long-exclusive-lock", text, _INDEX_UNDER_LOCK)

    def alter_type(
        self,
        table: str,
        cmd: Any,
        columns: dict[str, tuple[str, tuple[int, ...]]],
        existing: bool,
        text: str,
    ) -> None:
        new = _type(cmd.def_.typeName)
        old = columns.get(cmd.name)
        columns[cmd.name] = new
        if not existing:
            return
        if cmd.def_.raw_default is not None:  # USING: PostgreSQL recomputes every row
            self.flag("column-type-rewrite", text)
        elif old is None:
            self.flag(
                "column-type-rewrite",
                text,
                "the column's current type is unknown to the history, so this change may "
                "rewrite the table under an ACCESS EXCLUSIVE lock",
            )
        elif not _widens(old, new):
            self.flag("column-type-rewrite", text)

    def rename(self, stmt: Any, text: str) -> None:
        from pglast.enums import ObjectType

        if stmt.relation is None:
            return
        table = _name(stmt.relation)
        if stmt.renameType == ObjectType.OBJECT_TABLE:
            if self.existing(table) and ({table, stmt.newname} & set(self.mapped)):
                self.flag("rename-mapped", text)
            self.history.columns[stmt.newname] = self.history.columns.pop(table, {})
            if table in self.created:
                self.created.add(stmt.newname)
        elif stmt.renameType == ObjectType.OBJECT_COLUMN:
            mapped = self.mapped.get(table, set())
            if self.existing(table) and ({stmt.subname, stmt.newname} & mapped):
                self.flag("rename-mapped", text)
            columns = self.history.columns.get(table, {})
            if stmt.subname in columns:
                columns[stmt.newname] = columns.pop(stmt.subname)

    def drop(self, stmt: Any, text: str) -> None:
        from pglast.enums import ObjectType

        if stmt.removeType == ObjectType.OBJECT_INDEX and stmt.concurrent:
            if self.history.in_transaction:
                self.flag("concurrently-in-transaction", text)
            return
        if stmt.removeType != ObjectType.OBJECT_TABLE:
            return
        for parts in stmt.objects or ():
            table = ".".join(part.sval for part in parts)
            if self.existing(table) and table in self.mapped:
                self.flag("drop-mapped", text)
            self.history.columns.pop(table, None)

    def vacuum(self, stmt: Any, text: str) -> None:
        if any(option.defname == "full" for option in stmt.options or ()):
            self.flag("long-exclusive-lock", text, "VACUUM FULL rewrites the table")

    def cluster(self, stmt: Any, text: str) -> None:
        self.flag("long-exclusive-lock", text, "CLUSTER rewrites the table")

    def reindex(self, stmt: Any, text: str) -> None:
        if any(param.defname == "concurrently" for param in stmt.params or ()):
            if self.history.in_transaction:
                self.flag("concurrently-in-transaction", text)
        else:
            self.flag("long-exclusive-lock", text, "REINDEX without CONCURRENTLY blocks writes")

    def refresh(self, stmt: Any, text: str) -> None:
        if not stmt.concurrent and self.existing(_name(stmt.relation)):
            self.flag(
                "long-exclusive-lock",
                text,
                "REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks its reads",
            )

    def lock(self, stmt: Any, text: str) -> None:
        mode = _STRONG_LOCKS.get(stmt.mode)
        tables = [_name(r) for r in stmt.relations or ()]
        if mode and any(self.existing(t) for t in tables):
            self.flag(
                "long-exclusive-lock",
                text,
                f"LOCK TABLE IN {mode} MODE holds that lock until the revision commits",
            )


@functools.cache
def _rewriting() -> frozenset[Any]:
    from pglast.enums import AlterTableType as At

    names = ("AT_SetTableSpace", "AT_SetLogged", "AT_SetUnLogged", "AT_SetAccessMethod")
    return frozenset(getattr(At, n) for n in names if hasattr(At, n))


_INDEX_UNDER_LOCK = (
    "this builds an index while holding an ACCESS EXCLUSIVE lock, blocking reads and writes"
)


def _one_line(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def mapped_columns(metadata: MetaData) -> dict[str, set[str]]:
    """Return the models' tables and their columns, keyed as the linter keys tables."""
    return {
        name: {column.name for column in table.columns} for name, table in metadata.tables.items()
    }


def lint_sql(
    sql: str,
    *,
    mapped: Mapping[str, set[str]] | None = None,
    reviewed: Callable[[str], Mapping[str, str]] = lambda revision: {},
    only: Iterable[str] | None = None,
) -> list[Verdict]:
    """Lint ``sql``, an upgrade rendered offline from the first revision (``-- Running
    upgrade A -> B`` markers between revisions); return a verdict per revision, oldest
    first (only those in ``only``, when given, though all are read for their history)."""
    from pglast import parse_sql
    from pglast.parser import ParseError

    wanted = set(only) if only is not None else None
    history = _History()
    verdicts: list[Verdict] = []
    markers = list(_RUNNING.finditer(sql))
    # The text before the first marker (the version table, the first BEGIN) counts for
    # the transaction state only.
    chunks: list[tuple[str | None, str]] = [(None, sql[: markers[0].start()] if markers else sql)]
    for index, marker in enumerate(markers):
        end = markers[index + 1].start() if index + 1 < len(markers) else len(sql)
        chunks.append((marker[2], sql[marker.end() : end]))
    for revision, chunk in chunks:
        linter = _Revision(revision or "", history, mapped or {})
        encoded = chunk.encode()
        try:
            statements = parse_sql(chunk)
        except ParseError as error:
            linter.flag("unparsable-sql", _one_line(str(error)))
            statements = ()
        for raw in statements:
            start = raw.stmt_location or 0
            length = raw.stmt_len or len(encoded) - start
            text = encoded[start : start + length].decode(errors="replace")
            linter.statement(raw.stmt, _one_line(text))
        if revision is None or (wanted is not None and revision not in wanted):
            continue
        marks = reviewed(revision)
        findings = tuple(
            Finding(
                revision,
                rule,
                operation,
                why or RULES[rule].why,
                RULES[rule].instead,
                marks.get(rule),
            )
            for rule, operation, why in linter.findings
        )
        verdicts.append(Verdict(revision, "", findings))
    return verdicts


def _reviewed_marks(module: Any, revision: str) -> dict[str, str]:
    """Return a revision module's ``reviewed`` marks, refusing a malformed one."""
    marks = getattr(module, "reviewed", None)
    if marks is None:
        return {}
    if not isinstance(marks, dict):
        raise CommandError(f"revision {revision}: 'reviewed' must be a dict of rule name to reason")
    for rule, reason in marks.items():
        if rule not in RULES:
            raise CommandError(
                f"revision {revision} marks unknown rule {rule!r} as reviewed; "
                f"rules: {', '.join(RULES)}"
            )
        if not isinstance(reason, str) or not reason.strip():
            raise CommandError(
                f"revision {revision} marks {rule!r} as reviewed without a reason; "
                "say why it is safe"
            )
    return dict(marks)


def lint(revisions: Sequence[str] = (), *, target: str = "heads") -> list[Verdict]:
    """Lint ``revisions`` (default: every one up to ``target``), rendering the history's
    upgrade SQL offline once; return their verdicts, oldest first."""
    from alembic import command

    from project.migrate.config import alembic_config, script_directory, target_metadata, translated
    from project.migrate.graph import resolve

    out = io.StringIO()
    config = alembic_config(out)
    script = script_directory(config)
    wanted = [resolve(script, revision) for revision in revisions]
    for name in wanted:
        if name in ("base", "head", "heads") or name.startswith(("+", "-")):
            raise CommandError(f"lintmigrations takes revision ids, got {name!r}")

    with translated():  # from base, as ``migrate --sql`` prints it
        command.upgrade(config, target, sql=True)

    def marks(revision: str) -> dict[str, str]:
        found = script.get_revision(revision)
        return _reviewed_marks(found.module if found is not None else None, revision)

    mapped = mapped_columns(target_metadata())
    verdicts = lint_sql(out.getvalue(), mapped=mapped, reviewed=marks, only=wanted or None)
    messages = {}
    for verdict in verdicts:
        found = script.get_revision(verdict.revision)
        messages[verdict.revision] = " ".join((found.doc or "").split()) if found else ""
    return [Verdict(v.revision, messages.get(v.revision, ""), v.findings) for v in verdicts]


def refuse_unsafe(verdicts: Iterable[Verdict]) -> None:
    """Raise CommandError naming the first revision with an unreviewed finding.

    SQL the parser cannot read is left to the server, which parses it the same way and
    reports the error itself (or runs syntax newer than the parser's).
    """
    for verdict in verdicts:
        unsafe = [f for f in verdict.unsafe if f.rule != "unparsable-sql"]
        if unsafe:
            first = unsafe[0]
            more = len(unsafe) - 1
            also = f" (and {more} more)" if more else ""
            raise CommandError(
                f"revision {verdict.revision} is unsafe: {first.rule}: {first.operation}"
                f"{also}; nothing was applied. See 'manage.py lintmigrations "
                f"{verdict.revision}', fix it or mark it reviewed in the revision file"
            )
