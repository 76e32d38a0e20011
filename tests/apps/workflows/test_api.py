"""``/api/workflows`` through the real app and PostgreSQL: the graph in a few queries,
optimistic locking."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from apps.workflows.factories import WorkflowFactory
from apps.workflows.models import Edge, Node, Workflow
from project.enums import NodeType
from project.testing.sql import recorded_statements
from tests.apiclient import api_client

NEW_WORKFLOW = {"name": "breakout", "trigger_type": "manual"}


async def add_graph(session: AsyncSession, workflow: Workflow, nodes: int, edges: int) -> None:
    """Give ``workflow`` ``nodes`` nodes and ``edges`` distinct edges between them."""
    made = [
        Node(workflow_id=workflow.id, name=f"n{i}", node_type=NodeType.CONDITION)
        for i in range(nodes)
    ]
    session.add_all(made)
    await session.flush()
    links = [(i, (i + step) % nodes) for step in range(1, edges // nodes + 2) for i in range(nodes)]
    session.add_all(
        Edge(workflow_id=workflow.id, source_node_id=made[a].id, target_node_id=made[b].id)
        for a, b in links[:edges]
    )
    await session.flush()


async def test_the_graph_comes_in_at_most_four_queries(
    db_session: AsyncSession, db_engine: AsyncEngine
) -> None:
    workflow = await WorkflowFactory.create()
    await add_graph(db_session, workflow, nodes=200, edges=400)
    db_session.expunge_all()
    async with api_client() as client:
        with recorded_statements(db_engine) as statements:
            response = await client.get(f"/api/workflows/{workflow.id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (len(body["nodes"]), len(body["edges"])) == (200, 400)
    assert body["version"] == 1
    queries = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(queries) <= 4, queries


async def test_missing_and_deleted_workflows_are_404(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create(with_graph=True)
    async with api_client() as client:
        url = f"/api/workflows/{workflow.id}"
        assert (await client.get(url)).status_code == 200
        assert (await client.delete(url)).status_code == 204
        assert (await client.get(url)).status_code == 404
        assert (await client.get(f"{url}/executions")).status_code == 404
    hidden = await db_session.scalar(
        text("SELECT count(*) FROM nodes WHERE workflow_id = :id AND deleted_at IS NULL"),
        {"id": workflow.id},
    )
    assert hidden == 0  # the graph went with it


async def test_a_stale_patch_is_409(db_session: AsyncSession) -> None:
    async with api_client() as client:
        created = (await client.post("/api/workflows", json=NEW_WORKFLOW)).json()
        url = f"/api/workflows/{created['id']}"
        assert created["version"] == 1
        first = await client.patch(url, json={"version": 1, "name": "mine"})
        assert first.status_code == 200, first.text
        assert first.json()["version"] == 2
        stale = await client.patch(url, json={"version": 1, "name": "theirs"})
        assert stale.status_code == 409
        assert "version" in stale.json()["detail"]
        assert (await client.patch(url, json={"name": "no version"})).status_code == 422
        assert (await client.get(url)).json()["name"] == "mine"


async def test_list_workflows(db_session: AsyncSession) -> None:
    made = await WorkflowFactory.create_batch(3)
    async with api_client() as client:
        page = (await client.get("/api/workflows", params={"limit": 2})).json()
        rest = (await client.get("/api/workflows", params={"after": page["next"]})).json()
    assert [w["id"] for w in page["items"] + rest["items"]] == [str(w.id) for w in made]
