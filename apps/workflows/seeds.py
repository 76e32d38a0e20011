"""Seeders of the workflows app: demo workflows with valid graphs."""

from __future__ import annotations

import uuid
from typing import Any

from apps.workflows.factories import EdgeFactory, NodeFactory, WorkflowFactory
from apps.workflows.models import Edge, Node, Workflow
from project.enums import NodeType
from project.factories.rows import rows
from project.orm.types import uuid7
from project.seeding import SeedContext, seeder

#: The demo graph: (name, type, tool, agent), then edges between positions with conditions.
GRAPH: list[tuple[str, NodeType, str | None, str | None]] = [
    ("trigger", NodeType.TRIGGER, None, None),
    ("fetch prices", NodeType.TOOL, "price-feed", None),
    ("analyse", NodeType.AGENT, None, "market-analyst"),
    ("signal?", NodeType.CONDITION, None, None),
    ("notify", NodeType.TOOL, "slack-alert", None),
    ("collect", NodeType.AGGREGATOR, None, None),
]
LINKS: list[tuple[int, int, dict[str, Any] | None]] = [
    (0, 1, None),
    (1, 2, None),
    (2, 3, None),
    (3, 4, {"when": True}),
    (3, 5, {"when": False}),
]
EXECUTIONS_PER_WORKFLOW = 100


def workflow_count(count: int) -> int:
    """Return how many demo workflows ``--count`` asks for (one per 1,000 node runs)."""
    return max(1, count // 1000) if count > 0 else 0


@seeder(depends_on=["tools.builtin", "agents.builtin"])
async def demo(ctx: SeedContext) -> None:
    """Write demo workflows, each with the six-node graph; shared as ``workflows``:
    a list of (workflow id, trigger type, node ids)."""
    total = workflow_count(ctx.count)
    tools, agents = ctx.shared["tools"], ctx.shared["agents"]
    workflows = [{"id": uuid7(), **row} for row in rows(WorkflowFactory, total)]
    nodes: list[dict[str, Any]] = []
    edges: list[dict[str, Any]] = []
    made: list[tuple[uuid.UUID, Any, list[uuid.UUID]]] = []
    node_rows = rows(NodeFactory, total * len(GRAPH), workflow_id=None)
    edge_rows = rows(
        EdgeFactory, total * len(LINKS), workflow_id=None, source_node_id=None, target_node_id=None
    )
    for workflow in workflows:
        ids = [uuid7() for _ in GRAPH]
        for position, (node_id, (name, node_type, tool, agent)) in enumerate(
            zip(ids, GRAPH, strict=True)
        ):
            node = next(node_rows)
            node.update(
                id=node_id,
                workflow_id=workflow["id"],
                name=name,
                node_type=node_type,
                tool_id=tools[tool] if tool else None,
                agent_id=agents[agent] if agent else None,
                position_x=200.0 * position,
            )
            nodes.append(node)
        for source, target, condition in LINKS:
            edge = next(edge_rows)
            edge.update(
                workflow_id=workflow["id"],
                source_node_id=ids[source],
                target_node_id=ids[target],
                condition=condition,
            )
            edges.append(edge)
        made.append((workflow["id"], workflow["trigger_type"], ids))
    with ctx.progress(len(workflows) + len(nodes) + len(edges)):
        await ctx.write(Workflow, workflows)
        await ctx.write(Node, nodes)
        await ctx.write(Edge, edges)
    ctx.shared["workflows"] = made
