"""Run the migration commands: each a plain function, as in ``alembic.command``.

``project/management/commands/`` are thin click layers over these functions, so code,
tests and the command line cannot drift apart. Every command that touches the database
runs on one direct connection (``project.migrate.lock.run_online``); the ones that change
it hold the migration lock, and each revision runs in its own transaction under the
migration timeouts (``project.migrate.safety``), so a failing revision rolls back alone
and the version table always tells the truth. Failures reach the user as one line.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from project.exceptions import CommandError, summary
from project.migrate.config import alembic_config, script_directory, translated
from project.migrate.graph import (
    absolute,
    applied,
    current_heads,
    direction,
    is_relative,
    oldest_first,
    require_at_head,
    require_single_head,
    resolve,
    steps_back,
)
from project.migrate.lock import run_online
from project.migrate.plan import Migration, Plan, downgrade_plan

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.engine import Connection

    from project.db.url import DatabaseURL


def showmigrations() -> list[Migration]:
    """Return every revision, oldest first, marked applied or pending."""
    script = script_directory()

    def work(config: Config, connection: Connection) -> list[Migration]:
        done = applied(script, current_heads(connection))
        return [
            Migration(rev.revision, rev.doc or "", rev.revision in done)
            for rev in oldest_first(script)
        ]

    return run_online(work)


def plan(revision: str = "head") -> Plan:
    """Return what migrating to ``revision`` would do, reading the database's revision."""
    script = script_directory()
    target = resolve(script, revision)
    if target == "head":
        require_single_head(script)
    heads = run_online(lambda config, connection: current_heads(connection))
    target = absolute(script, heads, target)
    way = direction(script, heads, target)
    if way == "downgrade":
        return downgrade_plan(script, heads, target)
    return Plan(way, target, heads)


def rollback_plan(steps: int = 1) -> Plan:
    """Return what rolling back ``steps`` revisions would do; an impossible rollback (more
    steps than applied revisions) is an error here, before anyone is asked to confirm."""
    if steps < 1:
        raise CommandError(f"--steps must be at least 1, got {steps}")
    script = script_directory()
    heads = run_online(lambda config, connection: current_heads(connection))
    return downgrade_plan(script, heads, steps_back(script, heads, steps))


def _failed_revision(script: ScriptDirectory, connection: Connection, target: str) -> str:
    heads = current_heads(connection)
    steps = list(script.iterate_revisions(target, heads or "base"))
    return steps[-1].revision if steps else target


def _reporter(echo: Callable[[str], None]) -> Callable[..., None]:
    def report(*, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        verb = "Applied" if step.is_upgrade else "Unapplied"
        doc = step.up_revision.doc if step.up_revision is not None else ""
        echo(f"  {verb} {step.up_revision_id} {doc or ''}".rstrip())

    return report


def upgrade(
    revision: str = "head",
    *,
    echo: Callable[[str], None] = print,
    url: DatabaseURL | None = None,
) -> None:
    """Upgrade the database (or the one at ``url``) to ``revision`` under the migration
    lock."""
    from alembic import command
    from alembic.util import CommandError as AlembicCommandError

    from project.migrate import safety as migration_safety

    script = script_directory()
    target = resolve(script, revision)
    if target == "head":
        require_single_head(script)

    def work(config: Config, connection: Connection) -> None:
        goal = target
        if is_relative(target):  # counted from where the database is, under the lock
            goal = absolute(script, current_heads(connection), target)
            connection.commit()
        config.attributes["context_options"] = {"on_version_apply": _reporter(echo)}
        config.attributes["echo"] = echo
        try:
            migration_safety.run_with_retries(
                connection,
                lambda: command.upgrade(config, goal),
                failed_revision=lambda: _failed_revision(script, connection, goal),
                at=lambda: ", ".join(current_heads(connection)) or "base",
                echo=echo,
            )
        except (CommandError, AlembicCommandError):  # the retries' own report; Alembic's
            raise
        except Exception as exc:
            connection.rollback()
            failed = _failed_revision(script, connection, goal)
            now = ", ".join(current_heads(connection)) or "base"
            raise CommandError(
                f"revision {failed} failed and was rolled back "
                f"({summary(exc)}); the database is at {now}"
            ) from exc

    run_online(work, lock=True, url=url)


def _check_unchanged(heads: tuple[str, ...], expected: tuple[str, ...] | None) -> None:
    if expected is not None and set(heads) != set(expected):
        was, now = ", ".join(expected) or "base", ", ".join(heads) or "base"
        raise CommandError(
            f"the database moved from {was} to {now} since the plan was made; run it again"
        )


def _downgrade_with_retries(
    config: Config, connection: Connection, target: str, echo: Callable[[str], None]
) -> None:
    """Downgrade to ``target``, retrying a revision that hit the DDL lock timeout."""
    from alembic import command

    from project.migrate import safety as migration_safety

    def at() -> str:
        return ", ".join(current_heads(connection)) or "base"

    config.attributes["context_options"] = {"on_version_apply": _reporter(echo)}
    config.attributes["echo"] = echo
    migration_safety.run_with_retries(
        connection, lambda: command.downgrade(config, target), failed_revision=at, at=at, echo=echo
    )


def downgrade(
    revision: str,
    *,
    echo: Callable[[str], None] = print,
    from_heads: tuple[str, ...] | None = None,
) -> None:
    """Downgrade the database to ``revision`` (``base`` for an empty schema).

    With ``from_heads`` (a Plan's), refuse when the database is no longer there: what
    was confirmed is what runs.
    """
    script = script_directory()
    target = resolve(script, revision)

    def work(config: Config, connection: Connection) -> None:
        heads = current_heads(connection)
        # End the read's implicit transaction: each revision then gets its own.
        connection.commit()
        _check_unchanged(heads, from_heads)
        _downgrade_with_retries(config, connection, absolute(script, heads, target), echo)

    run_online(work, lock=True)


def rollback(
    steps: int = 1,
    *,
    echo: Callable[[str], None] = print,
    from_heads: tuple[str, ...] | None = None,
) -> None:
    """Downgrade ``steps`` revisions (refusing, with ``from_heads``, a database that is no
    longer where the plan found it)."""
    if steps < 1:
        raise CommandError(f"--steps must be at least 1, got {steps}")
    script = script_directory()

    def work(config: Config, connection: Connection) -> None:
        heads = current_heads(connection)
        connection.commit()
        _check_unchanged(heads, from_heads)
        _downgrade_with_retries(config, connection, steps_back(script, heads, steps), echo)

    run_online(work, lock=True)


def sql(revision: str = "head", *, start: str | None = None) -> str:
    """Return the SQL that upgrades from ``start`` (default base) to ``revision``."""
    from alembic import command

    script = script_directory()
    target = resolve(script, revision)
    target = absolute(script, (start,) if start and start != "base" else (), target)
    out = io.StringIO()
    config = alembic_config(out)
    with translated():
        command.upgrade(config, f"{start}:{target}" if start else target, sql=True)
    return out.getvalue()


def planned_sql(revision: str = "head") -> tuple[str, str | None]:
    """Return the SQL that ``migrate REVISION`` would run from the database's current
    revision (a downgrade's for an older one), and a note when the database could not be
    asked and the SQL starts from an empty database."""
    from alembic import command

    script = script_directory()
    target = resolve(script, revision)
    if target == "head":
        require_single_head(script)
    try:
        heads = run_online(lambda config, connection: current_heads(connection))
    except CommandError:
        raise
    except Exception as error:  # unreachable: render from base, as plain Alembic does
        from project.exceptions import describe

        if is_relative(target):
            raise CommandError(
                f"{target} counts from the database's revision, which could not be read "
                f"({describe(error)})"
            ) from error
        note = f"the database could not be asked ({describe(error)}); SQL from an empty one"
        return sql(revision), note
    target = absolute(script, heads, target)
    way = direction(script, heads, target)
    if way == "noop":
        return f"-- nothing to do: the database is at {', '.join(heads) or 'base'}\n", None
    out = io.StringIO()
    config = alembic_config(out)
    start = heads[0] if heads else None
    with translated():
        if way == "downgrade":
            command.downgrade(config, f"{start}:{target}", sql=True)
        else:
            command.upgrade(config, f"{start}:{target}" if start else target, sql=True)
    return out.getvalue(), None


def sqlmigrate(revision: str) -> str:
    """Return the SQL of one revision's upgrade."""
    script = script_directory()
    target = resolve(script, revision)
    if target in ("base", "head", "heads") or is_relative(target):
        found = script.get_revision("head") if target == "head" else None
        if found is None:
            raise CommandError(f"sqlmigrate needs one revision, got {revision!r}")
        target = found.revision
    rev = script.get_revision(target)
    assert rev is not None
    down = rev.down_revision
    if isinstance(down, tuple | list):
        if len(down) > 1:
            return merge_sql(target, tuple(down))
        down = down[0]
    return sql(target, start=down or "base")


def merge_sql(target: str, parents: tuple[str, ...]) -> str:
    """Return the SQL of merge revision ``target`` alone, starting from all its parents.

    No public Alembic command does this: ``upgrade PARENT:TARGET --sql`` also renders the
    other parents' branches, and a range takes one starting revision. So this is the one
    adapter over Alembic's step objects, as ``command.upgrade`` builds them, on the steps
    ScriptDirectory's public ``iterate_revisions`` returns; ``tests/project/migrate/
    test_commands.py`` fails if ``MigrationStep.upgrade_from_script`` goes away.
    """
    from alembic.runtime.environment import EnvironmentContext
    from alembic.runtime.migration import MigrationStep

    out = io.StringIO()
    config = alembic_config(out)
    script = script_directory(config)

    def steps(rev: Any, context: Any) -> Any:
        scripts = reversed(list(script.iterate_revisions(target, rev)))
        return [MigrationStep.upgrade_from_script(script.revision_map, s) for s in scripts]

    with (
        translated(),
        EnvironmentContext(
            config, script, fn=steps, as_sql=True, starting_rev=parents, destination_rev=target
        ),
    ):
        script.run_env()
    return out.getvalue()


@dataclass(frozen=True)
class WrittenRevision:
    """A revision file ``makemigrations`` wrote, and what its upgrade does."""

    path: str
    operations: tuple[str, ...]
    findings: tuple[str, ...] = ()  # what the linter still reports in it, one per line
    revision: str = ""


def makemigrations(message: str | None = None, *, empty: bool = False) -> list[WrittenRevision]:
    """Write a revision autogenerated from the models; return what was written, with
    one line per operation it detected.

    An autogenerate that finds no change writes nothing and returns an empty list.
    Indexes and foreign keys on existing tables are written the safe way
    (``project.migrate.autogen``), and the linter's findings come with each revision.
    """
    from alembic import command

    from project.migrate import autogen as migration_autogen
    from project.migrate import lint as migration_lint
    from project.migrate.describe import describe_operations

    script = script_directory()
    require_single_head(script)
    detected: dict[str, tuple[str, ...]] = {}

    def inspect_directives(context: Any, revision: Any, directives: list[Any]) -> None:
        if not empty and directives and directives[0].upgrade_ops.is_empty():
            directives[:] = []
        for directive in directives:
            for upgrade_ops in directive.upgrade_ops_list:
                migration_autogen.make_safe(upgrade_ops)
            for downgrade_ops in directive.downgrade_ops_list:
                migration_autogen.make_downgrade_safe(downgrade_ops)
        migration_autogen.split_concurrent(directives)
        for directive in directives:
            detected[directive.rev_id] = tuple(
                line for ops in directive.upgrade_ops_list for line in describe_operations(ops)
            )

    def work(config: Config, connection: Connection) -> list[WrittenRevision]:
        if not empty:  # autogenerate compares with the database: it must be at head
            require_at_head(script, current_heads(connection))
        with redirect_stdout(io.StringIO()):  # Alembic prints "Generating ..." itself
            written = command.revision(
                config,
                message=message or "auto",
                autogenerate=not empty,
                process_revision_directives=inspect_directives,
            )
        scripts = written if isinstance(written, list) else [written]
        return [
            WrittenRevision(s.path, detected.get(s.revision, ()), revision=s.revision)
            for s in scripts
            if s is not None
        ]

    written = run_online(work)
    # What was written is linted as migrate would lint it: say so now, not at deploy.
    verdicts = {v.revision: v for v in migration_lint.lint([w.revision for w in written])}
    return [
        replace(
            w,
            findings=tuple(line for f in verdicts[w.revision].findings for line in f.lines()),
        )
        if w.revision in verdicts
        else w
        for w in written
    ]


def model_changes() -> list[str]:
    """Return the differences between the models and the migrated database (empty: none),
    as ``alembic check`` finds them through ``env.py``, one line each."""
    from alembic import command
    from alembic.util import AutogenerateDiffsDetected

    from project.migrate.describe import describe_diff

    script = script_directory()
    require_single_head(script)

    def work(config: Config, connection: Connection) -> list[str]:
        # Alembic's own check says only "not up to date"; this names both revisions.
        require_at_head(script, current_heads(connection))
        try:
            command.check(config)
        except AutogenerateDiffsDetected as found:
            return [describe_diff(diff) for diff in found.diffs]
        return []

    return run_online(work)


def merge(message: str | None = None) -> str | None:
    """Merge the migration heads into one revision; return its path (None: one head)."""
    from alembic import command

    config = alembic_config()
    heads = script_directory(config).get_heads()
    if len(heads) < 2:
        return None
    with translated(), redirect_stdout(io.StringIO()):
        written = command.merge(config, heads, message=message or "merge")
    return written.path if written is not None else None
