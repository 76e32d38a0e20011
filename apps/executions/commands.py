"""Commands of the executions app: ``workflows`` lists each workflow with its latest run."""

from __future__ import annotations

import click


@click.command("workflows")
@click.option("--deleted", is_flag=True, help="Include soft-deleted workflows.")
def list_workflows(deleted: bool) -> None:
    """List workflows with their trigger, graph size and latest run."""
    from apps.executions.queries import workflow_summaries
    from project import db

    rows = db.run(workflow_summaries(include_deleted=deleted))
    if not rows:
        click.echo("No workflows.")
        return
    click.echo(f"{'name':<32} {'trigger':<9} {'nodes':>5} {'edges':>5}  last run")
    for row in rows:
        mark = " (deleted)" if row.deleted else ""
        click.echo(
            f"{row.name[:32]:<32} {row.trigger_type:<9} {row.nodes:>5} {row.edges:>5}  "
            f"{row.last_status or '-'}{mark}"
        )
