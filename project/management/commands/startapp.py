"""``manage.py startapp``."""

import click


@click.command()
@click.argument("name")
def command(name: str) -> None:
    """Create apps/NAME/ with models, factories, seeds, commands, an API and a test."""
    from project.management.scaffold import startapp

    for path in startapp(name):
        click.echo(f"Wrote {path}")
    click.echo(f"Add 'apps.{name}' to INSTALLED_APPS in project/settings.py.")
