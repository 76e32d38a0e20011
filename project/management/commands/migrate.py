"""``manage.py migrate``."""

import re

import click

from project.management.base import confirm, destructive

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
@destructive
def command(revision: str, as_sql: bool, yes: bool, force_production: bool) -> None:
    """Upgrade the database to the latest revision, or to REVISION (an older one downgrades).

    REVISION may count from the database's revision: -1 downgrades one, +2 upgrades two.
    """
    from project import migrations

    if as_sql:
        text, note = migrations.planned_sql(revision)
        if note:
            click.echo(f"Note: {note}", err=True)
        click.echo(text, nl=False)
        return
    if revision == "head" and migrations.at_head_quickly():
        click.echo("No migrations to apply; the database is at head.")
        return
    plan = migrations.plan(revision)
    if plan.direction == "noop":
        click.echo(f"No migrations to apply; the database is at {plan.target}.")
        return
    if plan.direction == "downgrade":
        confirm(plan.describe(), yes=yes, force_production=force_production)
        migrations.downgrade(plan.target, echo=click.echo, from_heads=plan.heads)
        return
    migrations.upgrade(plan.target, echo=click.echo)
    click.echo(
        "The database is up to date." if plan.target == "head" else f"Migrated to {plan.target}."
    )
