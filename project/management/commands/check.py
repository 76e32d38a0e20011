"""``manage.py check``."""

import click

from project.exceptions import CommandError, ProjectError, describe


def _deploy_problems() -> list[str]:
    from project.conf import get_settings

    settings = get_settings()
    problems = []
    if settings.debug:
        problems.append("DEBUG is on; it echoes SQL to the logs")
    if settings.uses_embedded_database:
        problems.append("DATABASE_URL is unset; the embedded PostgreSQL is not for deployment")
    if settings.pool_size + settings.max_overflow > 100:
        problems.append(
            f"DB_POOL_SIZE + DB_MAX_OVERFLOW is {settings.pool_size + settings.max_overflow}; "
            "PostgreSQL allows 100 connections by default"
        )
    if not settings.api_token_hashes:
        problems.append(
            "API_TOKENS is unset; with ENVIRONMENT=production every write would be refused"
        )
    if settings.pool_timeout > 60:
        problems.append(f"DB_POOL_TIMEOUT is {settings.pool_timeout:g} s; requests would hang")
    return problems


def _check_replicas(deploy: bool) -> list[str]:
    """Report each replica with its lag; unreachable ones are problems under ``--deploy``."""
    from project import db
    from project.conf import get_settings
    from project.db import replicas

    urls = db.replica_urls()
    if not urls:
        return []
    try:
        states = db.run(replicas.describe(db.database_url(), urls))
    except Exception:  # the primary's own failure is reported above
        return []
    limit = get_settings().replica_max_lag
    problems = []
    for state in states:
        if state.up:
            lag = f"{state.lag:.1f} s" if state.lag is not None else "unknown"
            over = f" (over DB_REPLICA_MAX_LAG={limit:g} s)" if (state.lag or 0) > limit else ""
            click.echo(f"replica: {state.url}: lag {lag}{over}")
            continue
        line = f"replica {state.url} is unreachable: {state.error}"
        if deploy:
            problems.append(line)
        else:
            click.echo(f"replica: {state.url}: unreachable ({state.error})")
    return problems


@click.command()
@click.option("--deploy", is_flag=True, help="Also check settings for production.")
def command(deploy: bool) -> None:
    """Check settings, the database connection, the migration heads and the models."""
    from project import db
    from project.conf import get_settings
    from project.db import admin as dbadmin
    from project.db import database_url
    from project.migrate import commands as migrations
    from project.migrate.config import script_directory

    settings = get_settings()
    problems: list[str] = []
    click.echo(f"settings: ENVIRONMENT={settings.environment}, DEBUG={settings.debug}")
    try:
        url = database_url(settings)
        click.echo(f"database: {url}")

        async def version() -> str:
            conn = await dbadmin.connect(url, timeout=5)
            try:
                return str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()

        click.echo(f"database: reachable (PostgreSQL {db.run(version())})")
    except Exception as error:  # any failure to connect is a problem to report, not a crash
        problems.append(describe(error))
    problems += _check_replicas(deploy)
    heads = script_directory().get_heads()
    if len(heads) == 1:
        click.echo(f"migrations: one head ({heads[0]})")
    else:
        problems.append(
            f"migrations: {len(heads)} heads; run 'manage.py makemigrations --merge'"
            if heads
            else "migrations: none"
        )
    if not problems:
        try:
            changes = migrations.model_changes()
        except ProjectError as error:
            problems.append(f"models: {describe(error)}")
        else:
            if changes:
                problems.append(f"models: {len(changes)} changes not in a migration")
            else:
                click.echo("models: match the migrations")
    if deploy:
        problems += _deploy_problems()
    for problem in problems:
        click.echo(f"problem: {problem}", err=True)
    if problems:
        raise CommandError(f"{len(problems)} problem{'' if len(problems) == 1 else 's'} found")
    click.echo("No problems found.")
