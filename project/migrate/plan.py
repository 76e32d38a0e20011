"""Describe what migrating would do before it is done: the revisions an upgrade applies,
and for a downgrade the revisions it unapplies and the tables it drops, so that what is
confirmed is what runs."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from project.migrate.config import alembic_config, script_directory
from project.migrate.graph import applied

if TYPE_CHECKING:
    from alembic.script import ScriptDirectory

# The table names after CREATE TABLE / DROP TABLE (a DROP may list several).
_TABLE_DDL = re.compile(
    r"^\s*(CREATE|DROP)\s+TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?([^;(]+)",
    re.IGNORECASE | re.MULTILINE,
)


@dataclass(frozen=True)
class Migration:
    """One revision and whether it is applied."""

    revision: str
    message: str
    applied: bool

    def __str__(self) -> str:
        mark = "X" if self.applied else " "
        return f"[{mark}] {self.revision} {self.message}".rstrip()


@dataclass(frozen=True)
class Plan:
    """What migrating will do: the direction, the target, the database's revisions now,
    and for a downgrade the revisions it unapplies (newest first) and the tables it drops
    (None when its SQL could not be rendered to tell)."""

    direction: str  # "upgrade", "downgrade" or "noop"
    target: str
    heads: tuple[str, ...] = ()
    unapplied: tuple[Migration, ...] = ()
    dropped_tables: tuple[str, ...] | None = ()

    def describe(self, action: str | None = None) -> str:
        """Return ``action`` (default: downgrade to the target) with what it unapplies and
        drops, for a confirmation prompt."""
        text = action or f"downgrade the database to {self.target}"
        if self.unapplied:
            text += ", unapplying " + ", ".join(
                f"{m.revision} ({m.message})" if m.message else m.revision for m in self.unapplied
            )
        if self.dropped_tables is None:
            text += " (which tables it drops is unknown: its SQL cannot be rendered offline)"
        elif self.dropped_tables:
            noun = "table" if len(self.dropped_tables) == 1 else "tables"
            text += f" and dropping {noun} {', '.join(self.dropped_tables)}"
        return text


def _one_line(doc: str | None) -> str:
    return " ".join((doc or "").split())


def pending(plan: Plan) -> list[Migration]:
    """Return the revisions an upgrade ``plan`` applies, oldest first."""
    if plan.direction != "upgrade":
        return []
    steps = script_directory().iterate_revisions(plan.target, plan.heads or "base")
    return [
        Migration(rev.revision, _one_line(rev.doc), applied=False) for rev in reversed(list(steps))
    ]


def downgrade_plan(script: ScriptDirectory, heads: tuple[str, ...], target: str) -> Plan:
    """Return the plan of downgrading from ``heads`` to ``target``."""
    kept = applied(script, (target,)) if target != "base" else set()
    unapplied = tuple(
        Migration(rev.revision, _one_line(rev.doc), applied=True)
        for rev in script.iterate_revisions(heads, "base")
        if rev.revision not in kept
    )
    return Plan("downgrade", target, heads, unapplied, dropped_tables(heads, target))


def dropped_tables(heads: tuple[str, ...], target: str) -> tuple[str, ...] | None:
    """Return the tables that downgrading from ``heads`` to ``target`` drops, read from
    the downgrade's SQL rendered offline; None when that SQL cannot be rendered."""
    from alembic import command

    out = io.StringIO()
    config = alembic_config(out)
    try:
        for head in heads:
            command.downgrade(config, f"{head}:{target}", sql=True)
    except Exception:  # e.g. a downgrade that reads rows needs a live database to render
        return None
    first: dict[str, str] = {}  # a table created before it is dropped did not exist before
    for verb, names in _TABLE_DDL.findall(out.getvalue()):
        listed = names.split(",") if verb.upper() == "DROP" else [names]
        for name in listed:
            words = name.split()
            if words:
                first.setdefault(words[0].replace('"', ""), verb.upper())
    return tuple(n for n, verb in first.items() if verb == "DROP" and n != "alembic_version")
