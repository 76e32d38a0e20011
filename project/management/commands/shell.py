"""``manage.py shell``."""

import sys

import click


@click.command()
@click.option("-c", "--command", "code", metavar="CODE", help="Run CODE (await allowed) and exit.")
@click.option(
    "--sandbox", is_flag=True, help="Roll back every change on exit; commit() makes a savepoint."
)
@click.option(
    "-i",
    "--interface",
    type=click.Choice(["python", "ipython"]),
    default="python",
    show_default=True,
    help="The interactive interface.",
)
@click.option("--no-imports", is_flag=True, help="Preload nothing.")
@click.option("-v", "--verbose", is_flag=True, help="List each preloaded name and its origin.")
@click.pass_context
def command(
    ctx: click.Context,
    code: str | None,
    sandbox: bool,
    interface: str,
    no_imports: bool,
    verbose: bool,
) -> None:
    """Open an asyncio REPL with top-level await, the models and a session ready.

    Reads a script from stdin when stdin is not a terminal.
    """
    from project import shell

    status = shell.run(
        command=code,
        sandbox=sandbox,
        interface="ipython" if interface == "ipython" else "python",
        imports=not no_imports,
        verbose=verbose or bool((ctx.obj or {}).get("verbose")),
    )
    if status:
        # Not click's Exit: the CLI's main() must pass the script's own status on.
        sys.exit(status)
