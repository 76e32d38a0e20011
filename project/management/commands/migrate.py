"""``manage.py migrate``."""

import click

from project.management.base import confirm, destructive


@click.command()
@click.argument("revision", default="head")
@click.option("--sql", "as_sql", is_flag=True, help="Print the SQL instead of running it.")
@destructive
def command(revision: str, as_sql: bool, yes: bool, force_production: bool) -> None:
    """Upgrade the database to the latest revision, or to REVISION (an older one downgrades)."""
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
