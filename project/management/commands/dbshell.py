"""``manage.py dbshell``."""

import click


def _psql() -> str:
    import shutil

    found = shutil.which("psql")
    if found:
        return found
    from project.db import embedded

    return str(embedded.bin_dir() / "psql")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def command(psql_args: tuple[str, ...]) -> None:
    """Open psql on the configured database (extra arguments go to psql)."""
    import os
    import subprocess

    from project.db.target import database_url

    # Everything, the password included, travels in libpq's environment: never in argv,
    # which ps shows.
    env = {**os.environ, **database_url().libpq_env()}
    code = subprocess.call([_psql(), *psql_args], env=env)
    if code:
        raise click.exceptions.Exit(code)
