"""``manage.py createdb``."""

import click


@click.command()
def command() -> None:
    """Create the configured database."""
    from project import db
    from project.db import admin as dbadmin
    from project.db import direct_database_url

    url = direct_database_url()  # not through a pooler: CREATE/DROP/TRUNCATE
    if db.run(dbadmin.create_database(url)):
        click.echo(f"Created database {url.database!r}.")
    else:
        click.echo(f"Database {url.database!r} already exists.")
