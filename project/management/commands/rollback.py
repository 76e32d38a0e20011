"""``manage.py rollback``."""

import click

from project.management.base import confirm, destructive, refuse_in_production


@click.command()
@click.option("--steps", type=click.IntRange(min=1), default=1, show_default=True)
@destructive
def command(steps: int, yes: bool, force_production: bool) -> None:
    """Downgrade the database by STEPS revisions."""
    from project.migrate import commands as migrations

    noun = "revision" if steps == 1 else "revisions"
    # Production refuses before the database is even asked; an impossible rollback
    # fails before anyone is asked to confirm it.
    refuse_in_production(f"roll back {steps} {noun}", force_production=force_production)
    plan = migrations.rollback_plan(steps)
    action = plan.describe(f"roll back {steps} {noun} to {plan.target}")
    confirm(action, yes=yes, force_production=force_production)
    migrations.rollback(steps, echo=click.echo, from_heads=plan.heads)
