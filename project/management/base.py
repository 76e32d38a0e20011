"""What the commands share: confirmation of destructive work and the production guard."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from project.exceptions import CommandError

F = TypeVar("F", bound=Callable[..., Any])


def destructive(func: F) -> F:
    """Add ``--yes`` and ``--force-production`` to a command that destroys data."""
    func = click.option(
        "--force-production",
        is_flag=True,
        help="Allow this with ENVIRONMENT=production.",
    )(func)
    return click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")(func)


def refuse_in_production(action: str, *, force_production: bool) -> None:
    """Refuse ``action`` under ENVIRONMENT=production unless forced."""
    from project.conf import get_settings

    if get_settings().is_production and not force_production:
        raise CommandError(
            f"refusing to {action} with ENVIRONMENT=production; add --force-production if meant"
        )


def confirm(action: str, *, yes: bool, force_production: bool) -> None:
    """Refuse ``action`` in production unless forced; otherwise ask, or require --yes."""
    refuse_in_production(action, force_production=force_production)
    if yes:
        return
    if not sys.stdin.isatty():
        raise CommandError(f"this would {action}; pass --yes to confirm")
    if not click.confirm(f"This will {action}. Continue?", default=False):
        raise click.Abort
