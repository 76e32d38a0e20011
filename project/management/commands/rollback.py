"""``manage.py rollback``."""

import click

from project.management.base import confirm, destructive


@click.command()
@click.option("--steps", type=click.IntRange(min=1), default=1, show_default=True)
@destructive
def command(steps: int, yes: bool, force_production: bool) -> None:
    """Downgrade the database by STEPS revisions."""
    from project import migrations

    noun = "revision" if steps == 1 else "revisions"
    confirm(f"roll back {steps} {noun}", yes=yes, force_production=force_production)
    migrations.rollback(steps, echo=click.echo)
