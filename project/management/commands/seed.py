"""``manage.py seed``."""

import sys

import click


@click.command()
@click.argument("apps", nargs=-1)
@click.option(
    "--count",
    type=click.IntRange(min=0),
    default=100,
    show_default=True,
    help="Scale of the demo data: node executions (workflows: count/1000, runs: count/10).",
)
@click.option("--random-seed", type=int, help="Make the generated data repeatable.")
def command(apps: tuple[str, ...], count: int, random_seed: int | None) -> None:
    """Run the installed apps' seeders (or those of APPS) in one transaction."""
    from project import db, seeding

    report = db.run(
        seeding.run(apps, count=count, random_seed=random_seed, show_progress=sys.stdout.isatty())
    )
    for line in report.lines():
        click.echo(line)
