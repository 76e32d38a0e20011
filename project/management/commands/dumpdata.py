"""``manage.py dumpdata``."""

from pathlib import Path

import click


@click.command()
@click.argument("models", nargs=-1)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
    help="Write here (.json, .jsonl, optionally .gz) instead of stdout ('-': stdout).",
)
@click.option("--include-deleted", is_flag=True, help="Dump soft-deleted rows too.")
def command(models: tuple[str, ...], output: Path | None, include_deleted: bool) -> None:
    """Dump the rows of every model, or of MODELS (app or app.Model), as a fixture."""
    from project import db
    from project.seeding import fixtures

    fixtures.select_models(fixtures.model_specs(), models)  # a bad name: nothing written
    if output is not None and str(output) == "-":
        output = None
    report = db.run(
        fixtures.dump(db.database_url(), models, output, include_deleted=include_deleted)
    )
    if output is not None:
        click.echo(f"Dumped {report.records} records to {output}", err=True)
    if (note := report.note()) is not None:
        click.echo(note, err=True)
