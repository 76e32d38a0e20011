"""``manage.py loaddata``."""

from pathlib import Path

import click


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def command(files: tuple[Path, ...]) -> None:
    """Load fixture FILES (.json, .jsonl, optionally .gz) in one transaction."""
    from project import db
    from project.seeding import fixtures

    report = db.run(fixtures.load(db.database_url(), files))
    click.echo(report.line())
