"""``manage.py showmodel``."""

import click


@click.command()
@click.argument("model")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def command(model: str, as_json: bool) -> None:
    """Show MODEL (Model or app.Model): table, fields, relationships, mixins."""
    from project.db import inspection

    info = inspection.describe_model(model)
    click.echo(inspection.render_json(info) if as_json else inspection.render_text(info))
