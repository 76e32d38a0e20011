"""``manage.py flush``."""

import click

from project.management.base import confirm, destructive


@click.command()
@destructive
def command(yes: bool, force_production: bool) -> None:
    """Delete every row, keeping the schema and the migration history."""
    from project import db
    from project.db import admin as dbadmin
    from project.db import direct_database_url

    url = direct_database_url()  # not through a pooler: CREATE/DROP/TRUNCATE
    confirm(f"delete every row in {url.database!r}", yes=yes, force_production=force_production)
    tables = db.run(dbadmin.flush(url))
    click.echo(f"Emptied {len(tables)} tables.")
