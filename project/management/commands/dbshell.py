"""``manage.py dbshell``."""

import os
import shutil
import subprocess

import click


def _psql() -> str:
    found = shutil.which("psql")
    if found:
        return found
    from project.db import embedded

    return str(embedded.bin_dir() / "psql")


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("psql_args", nargs=-1, type=click.UNPROCESSED)
def command(psql_args: tuple[str, ...]) -> None:
    """Open psql on the configured database (extra arguments go to psql)."""
    from project.db import admin as dbadmin
    from project.db import database_url

    params = dbadmin.connect_kwargs(database_url())
    env = dict(os.environ)
    # The password travels in the environment, never in argv (visible in ps).
    if "password" in params:
        env["PGPASSWORD"] = params["password"]
    if "ssl" in params:
        env["PGSSLMODE"] = params["ssl"]
    argv = [_psql(), "-d", params["database"]]
    if "host" in params:
        argv += ["-h", str(params["host"])]
    if "port" in params:
        argv += ["-p", str(params["port"])]
    if "user" in params:
        argv += ["-U", params["user"]]
    code = subprocess.call([*argv, *psql_args], env=env)
    if code:
        raise click.exceptions.Exit(code)
