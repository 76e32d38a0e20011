"""``manage.py resetdb``."""

import click

from project.management.base import confirm, destructive


@click.command()
@click.option("--seed", is_flag=True, help="Seed the database afterwards.")
@destructive
def command(seed: bool, yes: bool, force_production: bool) -> None:
    """Drop and recreate the database, then migrate it (and seed it with --seed)."""
    from project import db
    from project.db import admin as dbadmin
    from project.db import direct_database_url
    from project.management import call_command
    from project.migrate import commands as migrations

    url = direct_database_url()  # not through a pooler: CREATE/DROP/TRUNCATE
    confirm(f"drop and recreate {url.database!r}", yes=yes, force_production=force_production)
    db.run(dbadmin.drop_database(url))
    db.run(dbadmin.create_database(url))
    click.echo(f"Recreated database {url.database!r}.")
    migrations.upgrade("head", echo=click.echo)
    if seed:
        call_command("seed")
