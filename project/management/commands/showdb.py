"""``manage.py showdb``."""

import click


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def command(as_json: bool) -> None:
    """Show the server, the database's size, sessions, migration state and tables."""
    from project import db
    from project.db import inspection

    info = db.run(inspection.describe_database(db.database_url(), db.replica_urls()))
    click.echo(inspection.render_json(info) if as_json else inspection.render_text(info))
