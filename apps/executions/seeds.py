"""Seeders of the executions app: demo run history, ``--count`` node runs in all."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from apps.executions.factories import NodeExecutionFactory, WorkflowExecutionFactory
from apps.executions.models import NodeExecution, WorkflowExecution
from project.factories.rows import rows
from project.orm.types import uuid7
from project.seeding import SeedContext, seeder

NODE_RUNS_PER_RUN = 10
CHUNK = 1_000  # workflow runs written per round, so memory stays flat at any --count
#: How the runs end: trait name (None: pending) and weight.
OUTCOMES: list[tuple[str | None, int]] = [
    ("completed", 80),
    ("failed", 10),
    ("running", 5),
    (None, 5),
]


@seeder(depends_on=["workflows.demo"])
async def history(ctx: SeedContext) -> None:
    """Write ceil(count / 10) workflow runs and exactly ``count`` node runs."""
    workflows = ctx.shared["workflows"]
    node_runs_left = ctx.count
    runs_total = math.ceil(ctx.count / NODE_RUNS_PER_RUN)
    if not workflows or runs_total == 0:
        return
    traits = [name for name, _ in OUTCOMES]
    weights = [weight for _, weight in OUTCOMES]
    run_rows = {
        name: rows(
            WorkflowExecutionFactory,
            runs_total,
            workflow_id=None,
            trigger_type=None,
            **({name: True} if name else {}),
        )
        for name in traits
    }
    node_rows = {
        failed: rows(
            NodeExecutionFactory,
            ctx.count,
            workflow_execution_id=None,
            node_id=None,
            **({"failed": True} if failed else {}),
        )
        for failed in (False, True)
    }
    with ctx.progress(runs_total + ctx.count):
        for start in range(0, runs_total, CHUNK):
            runs: list[dict[str, Any]] = []
            plan: list[tuple[Any, list[Any], bool, int]] = []
            for index in range(start, min(start + CHUNK, runs_total)):
                workflow_id, trigger_type, node_ids = workflows[index % len(workflows)]
                outcome = ctx.random.choices(traits, weights)[0]
                run = next(run_rows[outcome])
                run.update(id=uuid7(), workflow_id=workflow_id, trigger_type=trigger_type)
                runs.append(run)
                size = min(NODE_RUNS_PER_RUN, node_runs_left)
                node_runs_left -= size
                plan.append((run["id"], node_ids, outcome == "failed", size))
            await ctx.write(WorkflowExecution, runs)
            await ctx.write(NodeExecution, _node_runs(plan, node_rows))


def _node_runs(
    plan: list[tuple[Any, list[Any], bool, int]], node_rows: dict[bool, Iterator[dict[str, Any]]]
) -> Iterator[dict[str, Any]]:
    """Yield each run's node runs; in a failed run the last one failed."""
    for run_id, node_ids, failed, size in plan:
        for step in range(size):
            row = next(node_rows[failed and step == size - 1])
            row["workflow_execution_id"] = run_id
            row["node_id"] = node_ids[step % len(node_ids)]
            yield row
