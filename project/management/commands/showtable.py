"""``manage.py showtable``."""

import click


@click.command()
@click.argument("table")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def command(table: str, as_json: bool) -> None:
    """Show TABLE's columns, indexes, foreign keys in and out, checks, and its model."""
    from project import db
    from project.db import inspection

    info = db.run(inspection.describe_table(db.database_url(), table))
    click.echo(inspection.render_json(info) if as_json else inspection.render_text(info))
