"""``manage.py prepare``."""

import click


@click.command()
def command() -> None:
    """Prepare the database for a deploy: create it if missing, migrate it, seed reference data.

    Idempotent: on a prepared database it changes nothing. The migration is the
    ``migrate`` command's: linted first, each revision under the DDL lock timeout.
    """
    from project import db, seeding
    from project.db import admin as dbadmin
    from project.db import direct_database_url
    from project.management import call_command

    url = direct_database_url()  # not through a pooler: CREATE DATABASE
    if db.run(dbadmin.create_database(url)):
        click.echo(f"Created database {url.database!r}.")
    else:
        click.echo(f"Database {url.database!r} exists.")
    call_command("migrate")
    report = db.run(seeding.run(reference_only=True))
    rows = sum(report.rows.values())
    click.echo(f"Reference data: {len(report.seeders)} seeders, {rows} rows upserted.")
