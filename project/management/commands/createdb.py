"""``manage.py createdb``."""

import click


@click.command()
def command() -> None:
    """Create the configured database."""
    import asyncio

    from project import dbadmin
    from project.db import database_url

    url = database_url()
    if asyncio.run(dbadmin.create_database(url)):
        click.echo(f"Created database {url.database!r}.")
    else:
        click.echo(f"Database {url.database!r} already exists.")
