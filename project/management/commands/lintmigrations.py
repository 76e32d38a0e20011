"""``manage.py lintmigrations``."""

import click

from project.exceptions import CommandError


@click.command()
@click.argument("revisions", nargs=-1)
def command(revisions: tuple[str, ...]) -> None:
    """Report operations that would lock or rewrite an existing table, or break running code.

    Lints every revision, or REVISIONS. Exits 1 on any finding not marked as reviewed in
    its revision file (reviewed = {"rule-name": "why it is safe"}).
    """
    from project.migrate import lint as migration_lint

    verdicts = migration_lint.lint(revisions)
    unsafe = [f for v in verdicts for f in v.unsafe]
    for verdict in verdicts:
        for finding in verdict.findings:
            for line in finding.lines():
                click.echo(line)
    reviewed = sum(len(v.findings) for v in verdicts) - len(unsafe)
    checked = f"{len(verdicts)} revision{'s' if len(verdicts) != 1 else ''} checked"
    if unsafe:
        bad = sorted({f.revision for f in unsafe})
        raise CommandError(
            f"{len(unsafe)} unsafe operation{'s' if len(unsafe) != 1 else ''} in "
            f"{', '.join(bad)} ({checked}); fix them or mark them reviewed"
        )
    click.echo(f"No unsafe operations ({checked}, {reviewed} reviewed).")
