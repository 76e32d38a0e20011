"""``manage.py dbserver``."""

import click


@click.command()
@click.argument("action", type=click.Choice(["start", "stop", "status"]), default="status")
def command(action: str) -> None:
    """Start, stop or show the embedded PostgreSQL (used when DATABASE_URL is unset)."""
    from project.db import embedded

    if action == "start":
        click.echo(f"running: {embedded.ensure_running()}")
    elif action == "stop":
        click.echo("stopped" if embedded.stop() else "not running")
    else:
        url = embedded.running_url()
        click.echo(f"running: {url}" if url else "not running")
