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
    direction, target = migrations.plan(revision)
    if direction == "noop":
        click.echo(f"No migrations to apply; the database is at {target}.")
        return
    if direction == "downgrade":
        confirm(f"downgrade the database to {target}", yes=yes, force_production=force_production)
        migrations.downgrade(target, echo=click.echo)
        return
    migrations.upgrade(target, echo=click.echo)
    click.echo("The database is up to date." if target == "head" else f"Migrated to {target}.")
