"""Answer questions about the revision graph, all of it read from Alembic's
ScriptDirectory: which revision a name means, what is applied below the database's
revisions (read from its version table by Alembic's MigrationContext), how far a relative
step (``-1``, ``+2``) goes, and which way a target lies."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from project.exceptions import CommandError
from project.migrate.config import MIGRATE_FIRST, NOT_AT_HEAD

if TYPE_CHECKING:
    from alembic.script import Script, ScriptDirectory
    from sqlalchemy.engine import Connection

_RELATIVE = re.compile(r"[+-][1-9][0-9]*\Z")  # Alembic's relative steps: -1, +2


def is_relative(revision: str) -> bool:
    """Tell whether ``revision`` is a step counted from the database (``-1``, ``+2``)."""
    return bool(_RELATIVE.match(revision))


def current_heads(connection: Connection) -> tuple[str, ...]:
    """Return the revisions recorded in the database's version table."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_heads()


def applied(script: ScriptDirectory, heads: tuple[str, ...]) -> set[str]:
    """Return the revisions applied in a database at ``heads``: those and their ancestors."""
    return {rev.revision for rev in script.iterate_revisions(heads, "base")} if heads else set()


def oldest_first(script: ScriptDirectory) -> list[Script]:
    """Return every revision, oldest first."""
    return list(reversed(list(script.walk_revisions())))


def require_single_head(script: ScriptDirectory) -> None:
    """Refuse migrations with several heads: which one is meant is for the user to merge."""
    heads = script.get_heads()
    if len(heads) > 1:
        raise CommandError(
            f"the migrations have {len(heads)} heads ({', '.join(sorted(heads))}); "
            "run 'manage.py makemigrations --merge'"
        )


def require_at_head(script: ScriptDirectory, heads: tuple[str, ...]) -> None:
    """Refuse to compare the models with a database the migrations have not caught up."""
    latest = script.get_heads()
    if set(heads) != set(latest):
        at, head = ", ".join(heads) or "base", ", ".join(latest)
        raise CommandError(f"{NOT_AT_HEAD} (at {at}, head is {head}); {MIGRATE_FIRST}")


def resolve(script: ScriptDirectory, revision: str) -> str:
    """Return the full id of ``revision``: ``base``, ``head``, a relative step (``-1``,
    ``+2``: counted against the database by ``absolute``) or a revision's id."""
    if is_relative(revision):
        return revision
    if revision in ("base", "zero"):
        return "base"
    if revision in ("head", "heads"):
        return revision
    try:
        found = script.get_revision(revision)
    except Exception:
        found = None
    if found is None:
        raise CommandError(f"unknown revision {revision!r}; see 'manage.py showmigrations'")
    return found.revision


def absolute(script: ScriptDirectory, heads: tuple[str, ...], target: str) -> str:
    """Return ``target`` with a relative step (``-1``, ``+2``) counted from ``heads``."""
    if not is_relative(target):
        return target
    steps = int(target)
    return steps_back(script, heads, -steps) if steps < 0 else steps_forward(script, heads, steps)


def steps_back(script: ScriptDirectory, heads: tuple[str, ...], steps: int) -> str:
    """Return the revision ``steps`` revisions below ``heads`` (``base`` for all of them)."""
    if not heads:
        raise CommandError("nothing to roll back: no migration is applied")
    available = len(applied(script, heads))
    if steps > available:
        noun = "revision" if steps == 1 else "revisions"
        raise CommandError(f"cannot roll back {steps} {noun}; only {available} applied")
    if len(heads) > 1:
        raise CommandError(
            f"the database is at {len(heads)} heads ({', '.join(sorted(heads))}); "
            "name the revision to go back to"
        )
    current = heads[0]
    for _ in range(steps):
        found = script.get_revision(current)
        assert found is not None
        down = found.down_revision
        if isinstance(down, tuple | list):
            if len(down) > 1:  # which parent is "one back" is a guess: let the user say
                raise CommandError(
                    f"cannot count revisions back past merge revision {current}; "
                    "name the revision to go back to"
                )
            down = down[0] if down else None
        current = down or "base"
    return current


def steps_forward(script: ScriptDirectory, heads: tuple[str, ...], steps: int) -> str:
    """Return the revision ``steps`` revisions above ``heads``."""
    require_single_head(script)
    done = applied(script, heads)
    pending = [
        rev.revision
        for rev in reversed(list(script.iterate_revisions("heads", "base")))
        if rev.revision not in done
    ]
    noun = "revision" if steps == 1 else "revisions"
    if steps > len(pending):
        left = f"only {len(pending)} pending" if pending else "the database is at head"
        raise CommandError(f"cannot upgrade {steps} {noun}; {left}")
    target = pending[steps - 1]
    if len(applied(script, (target,)) - done) != steps:  # branches: no single count
        raise CommandError(
            f"cannot count {steps} {noun} forward across branches; name the revision instead"
        )
    return target


def direction(script: ScriptDirectory, heads: tuple[str, ...], target: str) -> str:
    """Return "upgrade", "downgrade" or "noop" for going from ``heads`` to ``target``."""
    if target == "base":
        return "downgrade" if heads else "noop"
    if target in ("head", "heads"):
        return "noop" if heads and set(heads) == set(script.get_heads()) else "upgrade"
    if target in heads:
        return "noop"
    return "downgrade" if target in applied(script, heads) else "upgrade"
