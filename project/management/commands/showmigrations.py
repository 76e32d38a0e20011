"""``manage.py showmigrations``."""

import click


@click.command()
def command() -> None:
    """List every revision, oldest first: [X] applied, [ ] pending."""
    from project.migrate import commands as migrations

    rows = migrations.showmigrations()
    if not rows:
        click.echo("(no migrations)")
    for row in rows:
        click.echo(str(row))
