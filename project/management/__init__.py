"""The ``manage.py`` command line: a lazy click group over built-in and app commands.

Finding a command reads file names only; running a built-in command imports only its own
module. ``--help`` imports every command module (click prints each one's short help), and
listing or running an app's command imports every installed app's ``commands.py``.
``call_command()`` is the single way to run a command from code or tests.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from project import shutdown
from project.exceptions import ProjectError, describe

__all__ = ["call_command", "cli", "main"]

COMMANDS_DIR = Path(__file__).parent / "commands"


def builtin_command_names() -> list[str]:
    """Return the built-in command names, from the file names alone."""
    return sorted(p.stem for p in COMMANDS_DIR.glob("*.py") if not p.stem.startswith("_"))


def app_commands() -> dict[str, click.Command]:
    """Return the click commands of every installed app's ``commands.py``.

    Two apps defining one name is reported; both stay reachable as ``<app>.<name>``.
    """
    from project.apps import apps

    found: dict[str, click.Command] = {}
    owners: dict[str, str] = {}
    builtins = set(builtin_command_names())
    for config in apps.get_app_configs():
        module = config.import_module("commands")
        if module is None:
            continue
        for value in vars(module).values():
            if not isinstance(value, click.Command) or value.name is None:
                continue
            found[f"{config.label}.{value.name}"] = value
            if value.name in builtins or value.name in owners:
                other = owners.get(value.name, "the built-in commands")
                click.echo(
                    f"Warning: command {value.name!r} of app {config.name!r} clashes with "
                    f"{other}; run it as '{config.label}.{value.name}'",
                    err=True,
                )
                continue
            owners[value.name] = config.name
            found[value.name] = value
    return found


class ManagementGroup(click.Group):
    """A group that finds commands lazily and suggests a close name for a typo."""

    _app_commands: dict[str, click.Command] | None = None

    def _apps(self) -> dict[str, click.Command]:
        if self._app_commands is None:
            self._app_commands = app_commands()
        return self._app_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = set(builtin_command_names())
        names.update(n for n in self._apps() if "." not in n)
        return sorted(names)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in builtin_command_names():
            import importlib

            module = importlib.import_module(f"{__name__}.commands.{cmd_name}")
            command: click.Command = module.command
            return command
        return self._apps().get(cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if self.get_command(ctx, name) is None and not name.startswith("-"):
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            ctx.fail(f"No such command {name!r}.{hint}")
        return super().resolve_command(ctx, args)


@click.group(cls=ManagementGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read settings from this file instead of .env.",
)
@click.option("--traceback", is_flag=True, help="Show the Python traceback on errors.")
@click.option("-v", "--verbose", is_flag=True, help="Say more.")
@click.pass_context
def cli(ctx: click.Context, env_file: Path | None, traceback: bool, verbose: bool) -> None:
    """Manage the PasteTrader backend: migrations, database, shell and seeding."""
    from project import conf

    ctx.ensure_object(dict)
    ctx.obj["verbose"] = verbose
    if env_file is not None:
        conf.use_env_file(env_file)


def call_command(name: str, *args: str) -> Any:
    """Run command ``name`` with command-line ``args``; errors raise, nothing exits."""
    return cli.main(args=[name, *args], prog_name="manage.py", standalone_mode=False)


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the command line and exit with its status."""
    shutdown.skip_final_collections()
    args = list(sys.argv[1:] if argv is None else argv)
    if "--traceback" in args:  # a global option, accepted anywhere on the line
        args = ["--traceback", *(arg for arg in args if arg != "--traceback")]
    try:
        status = cli.main(args=args, prog_name="manage.py", standalone_mode=False)
    except click.exceptions.Exit as stop:
        sys.exit(stop.exit_code)
    except click.ClickException as error:
        error.show()
        sys.exit(error.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("Aborted.", err=True)
        sys.exit(1)
    except Exception as error:
        if "--traceback" in args:
            raise
        click.echo(f"Error: {describe(error)}", err=True)
        sys.exit(error.exit_code if isinstance(error, ProjectError) else 1)
    # Outside standalone mode click returns, rather than raises, a command's exit status.
    sys.exit(status if isinstance(status, int) else 0)
