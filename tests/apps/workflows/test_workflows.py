"""Workflows, nodes and edges against PostgreSQL: the graph's constraints, cascades, soft delete
across the graph, JSONB, and loading a whole graph in a constant number of queries."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from apps.agents.factories import AgentFactory
from apps.tools.factories import ToolFactory
from apps.workflows.factories import EdgeFactory, NodeFactory, WorkflowFactory
from apps.workflows.models import Edge, Node, Workflow
from project.enums import NodeType, ToolType, TriggerType
from project.factories import AsyncFactory
from project.testing.sql import recorded_statements
from tests.apps.helpers import assert_enum_rejected, count_rows, created_rows, selects, violates

NODES_OF = "SELECT count(*) FROM nodes WHERE workflow_id = :id"
EDGES_OF = "SELECT count(*) FROM edges WHERE workflow_id = :id"
LAZY = "lazy='raise'"


async def _load_graph(session: AsyncSession, workflow_id: uuid.UUID) -> Workflow:
    statement = Workflow.with_graph().where(Workflow.id == workflow_id)
    return (await session.scalars(statement)).one()


# --- factories -------------------------------------------------------------------------------


def test_workflow_factory_builds_without_database() -> None:
    workflow = WorkflowFactory.build(trigger_type=TriggerType.SCHEDULE)
    assert workflow.id is None
    assert workflow.trigger_config == {"cron": "*/5 * * * *", "timezone": "UTC"}
    assert workflow.name.startswith("workflow-")


def test_workflow_factory_builds_a_graph_without_database() -> None:
    workflow = WorkflowFactory.build(with_graph=True)
    assert len(workflow.nodes) == 6
    assert len(workflow.edges) == 5
    assert all(edge.workflow is workflow for edge in workflow.edges)
    assert all(node.workflow is workflow for node in workflow.nodes)


def test_node_and_edge_factories_build_without_database() -> None:
    node = NodeFactory.build()
    assert node.node_type is NodeType.CONDITION
    assert node.tool is None
    assert node.agent is None
    assert isinstance(node.workflow, Workflow)

    edge = EdgeFactory.build()
    assert edge.source_node is not edge.target_node
    assert edge.source_node.workflow is edge.workflow
    assert edge.target_node.workflow is edge.workflow


@pytest.mark.parametrize("factory", [WorkflowFactory, NodeFactory, EdgeFactory])
async def test_factories_create_rows(
    db_session: AsyncSession, factory: type[AsyncFactory[Any]]
) -> None:
    assert await created_rows(db_session, factory) == 1


@pytest.mark.parametrize("factory", [WorkflowFactory, NodeFactory, EdgeFactory])
async def test_soft_deleted_trait(
    db_session: AsyncSession, factory: type[AsyncFactory[Any]]
) -> None:
    created = await factory.create(soft_deleted=True)
    model = type(created)
    assert created.is_deleted is True
    assert await db_session.scalar(select(model).where(model.id == created.id)) is None
    table = model.__tablename__
    assert await count_rows(
        db_session,
        f"SELECT count(*) FROM {table} WHERE id = :id AND deleted_at IS NOT NULL",
        id=created.id,
    )


async def test_node_traits(db_session: AsyncSession) -> None:
    tool_node = await NodeFactory.create(tool_node=True)
    assert tool_node.node_type is NodeType.TOOL
    assert tool_node.tool is not None
    assert tool_node.tool_id == tool_node.tool.id
    assert tool_node.agent_id is None

    agent_node = await NodeFactory.create(agent_node=True)
    assert agent_node.node_type is NodeType.AGENT
    assert agent_node.agent is not None
    assert agent_node.agent_id == agent_node.agent.id
    assert agent_node.tool_id is None


async def test_edge_factory_joins_two_nodes_of_its_workflow(db_session: AsyncSession) -> None:
    edge = await EdgeFactory.create()
    node_workflows = await db_session.scalars(
        text("SELECT workflow_id FROM nodes WHERE id IN (:a, :b)"),
        {"a": edge.source_node_id, "b": edge.target_node_id},
    )
    assert set(node_workflows) == {edge.workflow_id}
    assert edge.source_node_id != edge.target_node_id


async def test_workflow_factory_creates_a_valid_graph(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    created = await WorkflowFactory.create(with_graph=True)
    workflow_id = created.id
    assert await count_rows(db_session, NODES_OF, id=workflow_id) == 6
    assert await count_rows(db_session, EDGES_OF, id=workflow_id) == 5
    db_session.expunge_all()

    with recorded_statements(db_engine) as statements:
        workflow = await _load_graph(db_session, workflow_id)
    loads = len(statements)
    assert loads <= 4

    with recorded_statements(db_engine) as statements:
        by_name = {node.name: node for node in workflow.nodes}
        assert len(by_name) == 6
        types = {name: node.node_type for name, node in by_name.items()}
        assert types == {
            "trigger": NodeType.TRIGGER,
            "fetch prices": NodeType.TOOL,
            "analyse": NodeType.AGENT,
            "signal?": NodeType.CONDITION,
            "notify": NodeType.TOOL,
            "collect": NodeType.AGGREGATOR,
        }
        fetch_tool = by_name["fetch prices"].tool
        assert fetch_tool is not None
        assert fetch_tool.tool_type is ToolType.DATA_FETCHER
        notify_tool = by_name["notify"].tool
        assert notify_tool is not None
        assert notify_tool.tool_type is ToolType.NOTIFICATION
        assert by_name["analyse"].agent is not None
        for name in ("trigger", "signal?", "collect"):
            assert by_name[name].tool is None
            assert by_name[name].agent is None

        ids = {node.id: node.name for node in workflow.nodes}
        pairs = {
            (ids[e.source_node_id], ids[e.target_node_id]): e.condition for e in workflow.edges
        }
        assert pairs == {
            ("trigger", "fetch prices"): None,
            ("fetch prices", "analyse"): None,
            ("analyse", "signal?"): None,
            ("signal?", "notify"): {"when": True},
            ("signal?", "collect"): {"when": False},
        }
    assert statements == [], "reading the eagerly loaded graph ran SQL"

    # The agent's tools are not part of the graph load: touching them raises, no IO.
    with pytest.raises(InvalidRequestError, match=LAZY):
        _ = by_name["analyse"].agent.tools


# --- enums ---------------------------------------------------------------------------------


async def test_invalid_trigger_type_is_rejected(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    workflow = Workflow(name="w", trigger_type="cron")
    await assert_enum_rejected(db_session, db_engine, workflow, "TriggerType", "workflows")


async def test_invalid_node_type_is_rejected(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    workflow = await WorkflowFactory.create()
    node = Node(workflow_id=workflow.id, name="n", node_type="loop")
    await assert_enum_rejected(db_session, db_engine, node, "NodeType", "nodes")


# --- CHECK constraints -----------------------------------------------------------------------


async def test_a_tool_node_needs_a_tool(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create()
    async with violates(db_session, "ck_nodes_tool_iff_tool_node"):
        db_session.add(Node(workflow_id=workflow.id, name="n", node_type=NodeType.TOOL))


async def test_only_a_tool_node_has_a_tool(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create()
    tool = await ToolFactory.create()
    async with violates(db_session, "ck_nodes_tool_iff_tool_node"):
        db_session.add(
            Node(workflow_id=workflow.id, name="n", node_type=NodeType.CONDITION, tool_id=tool.id)
        )


async def test_an_agent_node_needs_an_agent(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create()
    async with violates(db_session, "ck_nodes_agent_iff_agent_node"):
        db_session.add(Node(workflow_id=workflow.id, name="n", node_type=NodeType.AGENT))


async def test_only_an_agent_node_has_an_agent(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create()
    agent = await AgentFactory.create()
    async with violates(db_session, "ck_nodes_agent_iff_agent_node"):
        db_session.add(
            Node(workflow_id=workflow.id, name="n", node_type=NodeType.TRIGGER, agent_id=agent.id)
        )


async def test_a_tool_node_cannot_also_have_an_agent(db_session: AsyncSession) -> None:
    node = await NodeFactory.create(tool_node=True)
    agent = await AgentFactory.create()
    async with violates(db_session, "ck_nodes_agent_iff_agent_node"):
        node.agent_id = agent.id


async def test_an_edge_cannot_loop_on_one_node(db_session: AsyncSession) -> None:
    node = await NodeFactory.create()
    async with violates(db_session, "ck_edges_no_self_loop"):
        db_session.add(
            Edge(workflow_id=node.workflow_id, source_node_id=node.id, target_node_id=node.id)
        )


# --- unique and foreign keys -------------------------------------------------------------------


async def test_two_nodes_have_at_most_one_edge_each_way(db_session: AsyncSession) -> None:
    edge = await EdgeFactory.create()
    async with violates(db_session, "uq_edges_source_target"):
        db_session.add(
            Edge(
                workflow_id=edge.workflow_id,
                source_node_id=edge.source_node_id,
                target_node_id=edge.target_node_id,
                condition={"when": True},
            )
        )
    # The other direction is another edge.
    db_session.add(
        Edge(
            workflow_id=edge.workflow_id,
            source_node_id=edge.target_node_id,
            target_node_id=edge.source_node_id,
        )
    )
    await db_session.flush()
    assert await count_rows(db_session, EDGES_OF, id=edge.workflow_id) == 2


@pytest.mark.parametrize(
    ("end", "constraint"),
    [
        ("source", "fk_edges_source_node_in_workflow"),
        ("target", "fk_edges_target_node_in_workflow"),
    ],
)
async def test_an_edge_joins_nodes_of_its_own_workflow(
    db_session: AsyncSession, end: str, constraint: str
) -> None:
    here = await NodeFactory.create()
    elsewhere = await NodeFactory.create()  # in another workflow
    assert here.workflow_id != elsewhere.workflow_id
    source, target = (elsewhere, here) if end == "source" else (here, elsewhere)
    async with violates(db_session, constraint):
        db_session.add(
            Edge(workflow_id=here.workflow_id, source_node_id=source.id, target_node_id=target.id)
        )


async def test_an_edge_needs_existing_nodes(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create()
    node = await NodeFactory.create(workflow=workflow)
    async with violates(db_session, "fk_edges_target_node_in_workflow"):
        db_session.add(
            Edge(workflow_id=workflow.id, source_node_id=node.id, target_node_id=uuid.uuid4())
        )


# --- deleting for real -------------------------------------------------------------------------


@pytest.mark.parametrize("graph_loaded", [True, False], ids=["graph loaded", "graph not loaded"])
async def test_deleting_a_workflow_deletes_its_graph(
    db_session: AsyncSession, graph_loaded: bool
) -> None:
    workflow = await WorkflowFactory.create(with_graph=True)
    tools = "SELECT count(*) FROM tools WHERE id = ANY(:ids)"
    tool_ids = [node.tool_id for node in workflow.nodes if node.tool_id is not None]
    db_session.expunge_all()
    if graph_loaded:
        loaded = await _load_graph(db_session, workflow.id)
    else:
        found = await db_session.get(Workflow, workflow.id)
        assert found is not None
        loaded = found

    await db_session.delete(loaded)
    await db_session.flush()

    assert await count_rows(db_session, NODES_OF, id=workflow.id) == 0
    assert await count_rows(db_session, EDGES_OF, id=workflow.id) == 0
    # Tools are shared things: they stay.
    assert await count_rows(db_session, tools, ids=tool_ids) == 2


async def test_deleting_a_workflow_in_sql_cascades_to_its_graph(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create(with_graph=True)
    await db_session.execute(text("DELETE FROM workflows WHERE id = :id"), {"id": workflow.id})
    assert await count_rows(db_session, NODES_OF, id=workflow.id) == 0
    assert await count_rows(db_session, EDGES_OF, id=workflow.id) == 0


async def test_deleting_a_node_deletes_its_edges(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create(with_graph=True)
    decide = next(node for node in workflow.nodes if node.name == "signal?")
    await db_session.execute(text("DELETE FROM nodes WHERE id = :id"), {"id": decide.id})
    # analyse -> decide, decide -> notify and decide -> collect are gone.
    assert await count_rows(db_session, EDGES_OF, id=workflow.id) == 2


# --- soft delete -----------------------------------------------------------------------------


async def _live_nodes_and_edges(session: AsyncSession, workflow_id: uuid.UUID) -> tuple[int, int]:
    nodes = await session.scalars(select(Node).where(Node.workflow_id == workflow_id))
    edges = await session.scalars(select(Edge).where(Edge.workflow_id == workflow_id))
    return len(nodes.all()), len(edges.all())


async def _deleted(session: AsyncSession, table: str, workflow_id: uuid.UUID) -> int:
    return await count_rows(
        session,
        f"SELECT count(*) FROM {table} WHERE workflow_id = :id AND deleted_at IS NOT NULL",
        id=workflow_id,
    )


@pytest.mark.parametrize("graph_loaded", [True, False], ids=["graph loaded", "graph not loaded"])
async def test_soft_deleting_a_workflow_hides_its_graph_and_restore_brings_it_back(
    db_session: AsyncSession, graph_loaded: bool
) -> None:
    created = await WorkflowFactory.create(with_graph=True)
    workflow_id = created.id
    # One node was soft-deleted on its own before: the workflow's restore must not revive it.
    collect = next(node for node in created.nodes if node.name == "collect")
    collect.soft_delete()
    await db_session.flush()
    assert await _live_nodes_and_edges(db_session, workflow_id) == (5, 5)
    db_session.expunge_all()

    if graph_loaded:
        workflow = await _load_graph(db_session, workflow_id)
        assert len(workflow.nodes) == 5
    else:
        found = await db_session.get(Workflow, workflow_id)
        assert found is not None
        workflow = found
    workflow.soft_delete()
    await db_session.flush()

    # Hidden from every default select ...
    assert await db_session.scalar(select(Workflow).where(Workflow.id == workflow_id)) is None
    assert await db_session.scalar(Workflow.with_graph().where(Workflow.id == workflow_id)) is None
    assert await _live_nodes_and_edges(db_session, workflow_id) == (0, 0)
    # ... but still in the tables, stamped with the workflow's deletion time.
    assert await count_rows(db_session, NODES_OF, id=workflow_id) == 6
    assert await count_rows(db_session, EDGES_OF, id=workflow_id) == 5
    assert await _deleted(db_session, "nodes", workflow_id) == 6
    assert await _deleted(db_session, "edges", workflow_id) == 5
    stamped = await count_rows(
        db_session,
        "SELECT count(*) FROM nodes n JOIN workflows w ON w.id = n.workflow_id "
        "WHERE w.id = :id AND n.deleted_at = w.deleted_at",
        id=workflow_id,
    )
    assert stamped == 5
    if graph_loaded:  # objects in memory follow
        assert all(node.deleted_at == workflow.deleted_at for node in workflow.nodes)
        assert all(edge.deleted_at == workflow.deleted_at for edge in workflow.edges)

    db_session.expunge_all()
    statement = select(Workflow).where(Workflow.id == workflow_id)
    if graph_loaded:
        statement = Workflow.with_graph().where(Workflow.id == workflow_id)
    deleted = (await db_session.scalars(statement.execution_options(include_deleted=True))).one()
    assert deleted.is_deleted
    deleted.restore()
    await db_session.flush()

    # Exactly what the workflow's delete took comes back; the older deletion stays.
    assert await _live_nodes_and_edges(db_session, workflow_id) == (5, 5)
    assert await _deleted(db_session, "nodes", workflow_id) == 1
    assert await _deleted(db_session, "edges", workflow_id) == 0
    gone = await db_session.scalar(
        text("SELECT name FROM nodes WHERE workflow_id = :id AND deleted_at IS NOT NULL"),
        {"id": workflow_id},
    )
    assert gone == "collect"
    db_session.expunge_all()
    restored = await _load_graph(db_session, workflow_id)
    assert {node.name for node in restored.nodes} == {
        "trigger",
        "fetch prices",
        "analyse",
        "signal?",
        "notify",
    }
    assert len(restored.edges) == 5


async def test_restore_of_an_expired_workflow_brings_its_graph_back(
    db_session: AsyncSession,
) -> None:
    workflow = await WorkflowFactory.create(with_graph=True)
    workflow.soft_delete()
    await db_session.flush()
    # After a rollback, say, the old deleted_at is no longer in memory.
    db_session.expire(workflow, ["deleted_at"])

    workflow.restore()
    await db_session.flush()

    assert await _live_nodes_and_edges(db_session, workflow.id) == (6, 5)
    assert await _deleted(db_session, "nodes", workflow.id) == 0


async def test_soft_deleting_one_workflow_leaves_others_alone(db_session: AsyncSession) -> None:
    doomed = await WorkflowFactory.create(with_graph=True)
    other = await WorkflowFactory.create(with_graph=True)
    doomed.soft_delete()
    await db_session.flush()
    assert await _live_nodes_and_edges(db_session, other.id) == (6, 5)
    assert await _deleted(db_session, "nodes", other.id) == 0


async def test_a_soft_deleted_node_is_hidden_from_the_graph(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create(with_graph=True)
    trigger = next(node for node in workflow.nodes if node.name == "trigger")
    trigger.soft_delete()
    await db_session.flush()
    db_session.expunge_all()

    loaded = await _load_graph(db_session, workflow.id)
    assert len(loaded.nodes) == 5
    assert trigger.id not in {node.id for node in loaded.nodes}


# --- JSONB ---------------------------------------------------------------------------------


async def test_trigger_config_round_trips(db_session: AsyncSession) -> None:
    config: dict[str, Any] = {
        "cron": "0 9 * * 1-5",
        "calendar": {"holidays": ["2026-12-25", "2027-01-01"], "region": None},
        "note": "Börse Frankfurt — 取引所",
        "retries": [{"after_s": 30}, {"after_s": 120}],
    }
    workflow = await WorkflowFactory.create(
        trigger_type=TriggerType.SCHEDULE, trigger_config=config
    )
    db_session.expunge_all()
    loaded = await db_session.get(Workflow, workflow.id)
    assert loaded is not None
    assert loaded.trigger_config == config

    row = (
        await db_session.execute(
            text(
                "SELECT trigger_config->>'note', trigger_config #>> '{calendar,holidays,1}', "
                "jsonb_typeof(trigger_config #> '{calendar,region}') "
                "FROM workflows WHERE id = :id"
            ),
            {"id": workflow.id},
        )
    ).one()
    assert tuple(row) == ("Börse Frankfurt — 取引所", "2027-01-01", "null")


async def test_manual_workflow_gets_an_empty_trigger_config(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create(trigger_type=TriggerType.MANUAL)
    stored = await db_session.scalar(
        text("SELECT trigger_config FROM workflows WHERE id = :id"), {"id": workflow.id}
    )
    assert stored == {}


async def test_edge_condition_round_trips(db_session: AsyncSession) -> None:
    condition: dict[str, Any] = {
        "all": [{"field": "score", "op": ">", "value": 0.7}, {"field": "régime", "in": ["bull"]}],
        "else": None,
    }
    edge = await EdgeFactory.create(condition=condition)
    db_session.expunge_all()
    loaded = await db_session.get(Edge, edge.id)
    assert loaded is not None
    assert loaded.condition == condition
    row = (
        await db_session.execute(
            text(
                "SELECT condition #>> '{all,1,field}', (condition #> '{all,0,value}')::float, "
                "jsonb_typeof(condition->'else') FROM edges WHERE id = :id"
            ),
            {"id": edge.id},
        )
    ).one()
    assert tuple(row) == ("régime", 0.7, "null")


async def test_an_edge_without_condition_stores_sql_null(db_session: AsyncSession) -> None:
    edge = await EdgeFactory.create(condition=None)
    plain = await EdgeFactory.create()
    guarded = await EdgeFactory.create(condition={"when": True})
    stored = await db_session.scalars(
        text("SELECT id FROM edges WHERE condition IS NULL AND id IN (:a, :b, :c)"),
        {"a": edge.id, "b": plain.id, "c": guarded.id},
    )
    assert set(stored) == {edge.id, plain.id}
    unguarded = await db_session.scalars(
        select(Edge.id).where(Edge.condition.is_(None), Edge.id.in_([edge.id, guarded.id]))
    )
    assert list(unguarded) == [edge.id]
    db_session.expunge_all()
    loaded = await db_session.get(Edge, edge.id)
    assert loaded is not None
    assert loaded.condition is None


# --- lazy="raise" ------------------------------------------------------------------------------


async def test_unloaded_relationships_raise_instead_of_loading(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    created = await WorkflowFactory.create(with_graph=True)
    db_session.expunge_all()
    workflow = await db_session.get(Workflow, created.id)
    assert workflow is not None
    node = (await db_session.scalars(select(Node).where(Node.workflow_id == created.id))).first()
    assert node is not None
    edge = (await db_session.scalars(select(Edge).where(Edge.workflow_id == created.id))).first()
    assert edge is not None

    with recorded_statements(db_engine) as statements:
        for obj, name in [
            (workflow, "nodes"),
            (workflow, "edges"),
            (node, "workflow"),
            (node, "tool"),
            (node, "agent"),
            (edge, "workflow"),
            (edge, "source_node"),
            (edge, "target_node"),
        ]:
            with pytest.raises(InvalidRequestError, match=LAZY):
                getattr(obj, name)
    assert statements == []


# --- eager loading: a constant number of queries -------------------------------------------


def _big_graph(node_count: int) -> Workflow:
    """Return an unsaved workflow of ``node_count`` nodes (tool, agent and condition nodes,
    a trigger first) and ``2 * node_count`` edges between distinct pairs."""
    workflow = WorkflowFactory.build()
    tools = ToolFactory.build_batch(7)
    agents = AgentFactory.build_batch(5)
    nodes: list[Node] = []
    for i in range(node_count):
        kind = (
            NodeType.TRIGGER
            if i == 0
            else [NodeType.TOOL, NodeType.AGENT, NodeType.CONDITION][i % 3]
        )
        nodes.append(
            Node(
                workflow=workflow,
                name=f"n{i}",
                node_type=kind,
                tool=tools[i % len(tools)] if kind is NodeType.TOOL else None,
                agent=agents[i % len(agents)] if kind is NodeType.AGENT else None,
                config={"i": i},
                position_x=float(i),
            )
        )
    for i in range(node_count):
        for step in (1, 2):
            Edge(
                workflow=workflow,
                source_node=nodes[i],
                target_node=nodes[(i + step) % node_count],
                condition={"step": step} if step == 2 else None,
            )
    return workflow


async def _save(session: AsyncSession, workflow: Workflow) -> uuid.UUID:
    session.add(workflow)
    await session.flush()
    session.expunge_all()
    return workflow.id


@pytest.mark.parametrize("node_count", [200, 10])
async def test_with_graph_loads_a_graph_in_a_constant_number_of_queries(
    db_session: AsyncSession, db_engine: AsyncEngine, node_count: int
) -> None:
    workflow_id = await _save(db_session, _big_graph(node_count))
    assert await count_rows(db_session, NODES_OF, id=workflow_id) == node_count
    assert await count_rows(db_session, EDGES_OF, id=workflow_id) == 2 * node_count

    with recorded_statements(db_engine) as statements:
        workflow = await _load_graph(db_session, workflow_id)
    assert len(statements) <= 4, statements
    assert selects(statements) == statements

    with recorded_statements(db_engine) as statements:
        assert len(workflow.nodes) == node_count
        assert len(workflow.edges) == 2 * node_count
        node_ids = set()
        for node in workflow.nodes:
            node_ids.add(node.id)
            if node.node_type is NodeType.TOOL:
                assert node.tool is not None
                assert node.tool.id == node.tool_id
                assert node.tool.name.startswith("tool-")
                assert node.agent is None
            elif node.node_type is NodeType.AGENT:
                assert node.agent is not None
                assert node.agent.id == node.agent_id
                assert node.agent.model_name
                assert node.tool is None
            else:
                assert node.tool is None
                assert node.agent is None
        pairs = {(edge.source_node_id, edge.target_node_id) for edge in workflow.edges}
        assert len(pairs) == 2 * node_count
        assert all(source != target for source, target in pairs)
        assert {end for pair in pairs for end in pair} == node_ids
        # Shared tools and agents are one object each (the identity map), not copies.
        tools = {id(node.tool) for node in workflow.nodes if node.tool is not None}
        assert len(tools) == len({node.tool_id for node in workflow.nodes if node.tool_id})
    assert statements == [], "using the eagerly loaded graph ran SQL"

    # Edges' own node relationships are not part of the load: they raise, never query.
    with recorded_statements(db_engine) as statements:
        with pytest.raises(InvalidRequestError, match=LAZY):
            _ = workflow.edges[0].source_node
        with pytest.raises(InvalidRequestError, match=LAZY):
            _ = workflow.edges[0].target_node
    assert statements == []


async def test_with_graph_query_count_does_not_grow_with_the_graph(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    counts = {}
    for node_count in (3, 10, 200):
        workflow_id = await _save(db_session, _big_graph(node_count))
        with recorded_statements(db_engine) as statements:
            workflow = await _load_graph(db_session, workflow_id)
        assert len(workflow.nodes) == node_count
        counts[node_count] = len(statements)
        db_session.expunge_all()
    assert counts[3] == counts[10] == counts[200] <= 4, counts


async def test_with_graph_loads_many_workflows_in_the_same_number_of_queries(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    ids = [await _save(db_session, _big_graph(20)) for _ in range(5)]
    with recorded_statements(db_engine) as statements:
        workflows = (
            await db_session.scalars(Workflow.with_graph().where(Workflow.id.in_(ids)))
        ).all()
    assert len(workflows) == 5
    assert len(statements) <= 4
    with recorded_statements(db_engine) as statements:
        assert all(len(workflow.nodes) == 20 for workflow in workflows)
        assert all(len(workflow.edges) == 40 for workflow in workflows)
    assert statements == []
