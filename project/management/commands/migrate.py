"""``manage.py migrate``."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import click

from project.exceptions import CommandError
from project.management.base import confirm, destructive

if TYPE_CHECKING:
    from project.migrate.lint import Verdict
    from project.migrate.plan import Plan

_STEP = re.compile(r"-[0-9]+\Z")


class _StepsCommand(click.Command):
    """A command whose argument may be a relative step such as ``-1``, which click would
    otherwise take for an unknown option."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" not in args and any(_STEP.match(arg) for arg in args):
            # After "--" everything is an argument; the options keep their places.
            steps = [arg for arg in args if _STEP.match(arg)]
            args = [arg for arg in args if not _STEP.match(arg)] + ["--", *steps]
        return super().parse_args(ctx, args)


@click.command(cls=_StepsCommand)
@click.argument("revision", default="head")
@click.option("--sql", "as_sql", is_flag=True, help="Print the SQL instead of running it.")
@click.option(
    "--check", is_flag=True, help="Exit 1 when revisions are pending (0 at head); apply nothing."
)
@click.option(
    "--plan", "show_plan", is_flag=True, help="List what would run, with the linter's verdicts."
)
@destructive
def command(
    revision: str, as_sql: bool, check: bool, show_plan: bool, yes: bool, force_production: bool
) -> None:
    """Upgrade the database to the latest revision, or to REVISION (an older one downgrades).

    REVISION may count from the database's revision: -1 downgrades one, +2 upgrades two.
    An upgrade first lints the pending revisions and refuses an unsafe one (see
    lintmigrations); each revision then runs under MIGRATE_DDL_LOCK_TIMEOUT, retried on a
    lock timeout MIGRATE_DDL_RETRIES times.
    """
    from project.migrate.fastpath import at_head_quickly

    if as_sql:
        from project.migrate.commands import planned_sql

        text, note = planned_sql(revision)
        if note:
            click.echo(f"Note: {note}", err=True)
        click.echo(text, nl=False)
        return
    if revision == "head" and not show_plan and at_head_quickly():
        done = "pending" if check else "to apply"
        click.echo(f"No migrations {done}; the database is at head.")
        return
    from project.migrate import commands as migrations  # past the fast path: Alembic's turn

    plan = migrations.plan(revision)
    if check:
        _check(plan)
        return
    if show_plan:
        _show(plan)
        return
    if plan.direction == "noop":
        click.echo(f"No migrations to apply; the database is at {plan.target}.")
        return
    if plan.direction == "downgrade":
        confirm(plan.describe(), yes=yes, force_production=force_production)
        migrations.downgrade(plan.target, echo=click.echo, from_heads=plan.heads)
        return
    from project.migrate import lint as migration_lint

    migration_lint.refuse_unsafe(verdicts(plan))
    migrations.upgrade(plan.target, echo=click.echo)
    click.echo(
        "The database is up to date." if plan.target == "head" else f"Migrated to {plan.target}."
    )


def verdicts(plan: Plan) -> list[Verdict]:
    """Lint what an upgrade plan applies. A new database (no revision applied, no table)
    has no table anyone could be waiting on, so its history is not held against it."""
    from project.migrate import lint as migration_lint
    from project.migrate.plan import pending as pending_of

    if not plan.heads and not _has_tables():
        return []
    pending = [m.revision for m in pending_of(plan)]
    return migration_lint.lint(pending, target=plan.target) if pending else []


def _has_tables() -> bool:
    """Tell whether the database holds any table outside the system schemas."""
    from sqlalchemy import text

    from project.migrate.lock import run_online

    query = text(
        "SELECT EXISTS (SELECT 1 FROM pg_tables "
        "WHERE schemaname NOT IN ('pg_catalog', 'information_schema'))"
    )
    return bool(run_online(lambda config, connection: connection.scalar(query)))


def _check(plan: Plan) -> None:
    from project.migrate.plan import pending as pending_of

    at = ", ".join(plan.heads) or "base"
    if plan.direction == "noop":
        click.echo(f"No migrations pending; the database is at {at}.")
        return
    if plan.direction == "downgrade":
        raise CommandError(f"the database (at {at}) is past {plan.target}")
    pending = [m.revision for m in pending_of(plan)]
    noun = "revision" if len(pending) == 1 else "revisions"
    raise CommandError(
        f"{len(pending)} {noun} pending ({', '.join(pending)}); the database is at {at}; "
        "run 'manage.py migrate'"
    )


def _show(plan: Plan) -> None:
    from project.migrate.plan import pending

    at = ", ".join(plan.heads) or "base"
    if plan.direction == "noop":
        click.echo(f"Nothing to run; the database is at {at}.")
        return
    if plan.direction == "downgrade":
        click.echo(f"Downgrade from {at} to {plan.target}, unapplying:")
        for m in plan.unapplied:
            click.echo(f"  {m.revision} {m.message}".rstrip())
        return
    found = {v.revision: v for v in verdicts(plan)}
    click.echo(f"Upgrade from {at} to {plan.target}:")
    for m in pending(plan):
        verdict = found.get(m.revision)
        mark = verdict.summary() if verdict else "not linted: a new database"
        click.echo(f"  {m.revision} {m.message} [{mark}]".replace("  [", " ["))
        for finding in verdict.unsafe if verdict else ():
            click.echo(f"      {finding.rule}: {finding.operation}")
