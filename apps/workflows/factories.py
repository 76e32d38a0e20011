"""Factories for the workflows app.

``WorkflowFactory(with_graph=True)`` builds a valid graph of six nodes and five edges: a
trigger, a data-fetching tool, an analysing agent and a condition in a chain, the condition
branching to a notification tool (when true) and an aggregator (when false).
"""

from __future__ import annotations

from typing import Any

import factory
from factory.fuzzy import FuzzyChoice

from apps.agents.factories import AgentFactory
from apps.tools.factories import ToolFactory
from apps.workflows.models import Edge, Node, Workflow
from project.enums import NodeType, ToolType, TriggerType
from project.factories import AsyncFactory

_TRIGGER_CONFIGS: dict[TriggerType, dict[str, Any]] = {
    TriggerType.SCHEDULE: {"cron": "*/5 * * * *", "timezone": "UTC"},
    TriggerType.EVENT: {"event": "price_alert", "symbol": "BTC-USD", "threshold_pct": 2.5},
    TriggerType.MANUAL: {},
}


class WorkflowFactory(AsyncFactory[Workflow]):
    """A workflow; ``with_graph=True`` gives it six nodes and five edges."""

    class Meta:
        model = Workflow

    trigger_type = FuzzyChoice(list(TriggerType))
    name = factory.Sequence(lambda n: f"workflow-{n:05d}")
    description = factory.Faker("sentence", nb_words=10)
    trigger_config = factory.LazyAttribute(lambda wf: dict(_TRIGGER_CONFIGS[wf.trigger_type]))
    is_active = True

    class Params:
        with_graph = factory.Trait(
            graph=factory.PostGeneration(lambda workflow, create, extracted: build_graph(workflow))
        )


def build_graph(workflow: Workflow) -> None:
    """Give ``workflow`` a valid graph, unsaved: trigger -> fetch -> analyse -> decide,
    with the decision branching to a notification (when true) and an aggregator (when
    false)."""
    fetch_tool = ToolFactory.build(tool_type=ToolType.DATA_FETCHER)
    notify_tool = ToolFactory.build(tool_type=ToolType.NOTIFICATION)
    agent = AgentFactory.build(tools=[fetch_tool])

    def node(name: str, node_type: NodeType, x: float, **kw: Any) -> Node:
        return Node(workflow=workflow, name=name, node_type=node_type, position_x=x, **kw)

    trigger = node("trigger", NodeType.TRIGGER, 0)
    fetch = node("fetch prices", NodeType.TOOL, 200, tool=fetch_tool)
    analyse = node("analyse", NodeType.AGENT, 400, agent=agent)
    decide = node("signal?", NodeType.CONDITION, 600, config={"expr": "signal.score > 0.7"})
    notify = node("notify", NodeType.TOOL, 800, tool=notify_tool)
    done = node("collect", NodeType.AGGREGATOR, 800, position_y=200)

    def edge(source: Node, target: Node, condition: dict[str, Any] | None = None) -> Edge:
        return Edge(workflow=workflow, source_node=source, target_node=target, condition=condition)

    edge(trigger, fetch)
    edge(fetch, analyse)
    edge(analyse, decide)
    edge(decide, notify, {"when": True})
    edge(decide, done, {"when": False})


class NodeFactory(AsyncFactory[Node]):
    """A condition node by default; traits ``tool_node`` and ``agent_node``."""

    class Meta:
        model = Node

    workflow = factory.SubFactory(WorkflowFactory)
    name = factory.Sequence(lambda n: f"node-{n:05d}")
    node_type = NodeType.CONDITION
    config = factory.LazyFunction(lambda: {"expr": "price > sma_50"})
    position_x = factory.Sequence(lambda n: float(n % 10) * 200)
    position_y = factory.Sequence(lambda n: float(n // 10) * 150)

    class Params:
        tool_node = factory.Trait(node_type=NodeType.TOOL, tool=factory.SubFactory(ToolFactory))
        agent_node = factory.Trait(node_type=NodeType.AGENT, agent=factory.SubFactory(AgentFactory))


class EdgeFactory(AsyncFactory[Edge]):
    """An edge between two new nodes of the same workflow."""

    class Meta:
        model = Edge

    workflow = factory.SubFactory(WorkflowFactory)
    source_node = factory.SubFactory(NodeFactory, workflow=factory.SelfAttribute("..workflow"))
    target_node = factory.SubFactory(NodeFactory, workflow=factory.SelfAttribute("..workflow"))
    condition = None
