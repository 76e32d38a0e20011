"""``manage.py dropdb``."""

import click

from project.management.base import confirm, destructive


@click.command()
@destructive
def command(yes: bool, force_production: bool) -> None:
    """Drop the configured database and everything in it."""
    from project import db
    from project.db import admin as dbadmin
    from project.db import direct_database_url

    url = direct_database_url()  # not through a pooler: CREATE/DROP/TRUNCATE
    confirm(f"drop database {url.database!r}", yes=yes, force_production=force_production)
    if db.run(dbadmin.drop_database(url)):
        click.echo(f"Dropped database {url.database!r}.")
    else:
        click.echo(f"Database {url.database!r} does not exist.")
