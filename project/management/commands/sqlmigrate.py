"""``manage.py sqlmigrate``."""

import click


@click.command()
@click.argument("revision")
def command(revision: str) -> None:
    """Print the SQL of one revision's upgrade."""
    from project.migrate import commands as migrations

    click.echo(migrations.sqlmigrate(revision), nl=False)
