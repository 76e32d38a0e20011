"""``/api/workflows/{id}/executions``, served by the executions app."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from apps.executions.factories import WorkflowExecutionFactory
from apps.workflows.factories import WorkflowFactory
from project.enums import ExecutionStatus
from tests.apiclient import api_client


async def test_executions_page_newest_first_by_status(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create()
    other = await WorkflowFactory.create()
    done = [
        await WorkflowExecutionFactory.create(workflow=workflow, completed=True) for _ in range(3)
    ]
    failed = await WorkflowExecutionFactory.create(workflow=workflow, failed=True)
    await WorkflowExecutionFactory.create(workflow=other, completed=True)
    url = f"/api/workflows/{workflow.id}/executions"
    async with api_client() as client:
        everything = (await client.get(url)).json()
        completed = (await client.get(url, params={"status": "completed", "limit": 2})).json()
        more = await client.get(url, params={"status": "completed", "after": completed["next"]})
        bad = await client.get(url, params={"status": "exploded"})
    assert [e["id"] for e in everything["items"]] == [str(e.id) for e in [failed, *reversed(done)]]
    assert [e["status"] for e in completed["items"]] == [ExecutionStatus.COMPLETED] * 2
    assert [e["id"] for e in more.json()["items"]] == [str(done[0].id)]
    assert bad.status_code == 422


async def test_a_missing_workflow_has_no_executions_page(db_session: AsyncSession) -> None:
    workflow = await WorkflowFactory.create()
    async with api_client() as client:
        url = f"/api/workflows/{workflow.id}/executions"
        assert (await client.get(url)).status_code == 200
        assert (await client.delete(f"/api/workflows/{workflow.id}")).status_code == 204
        assert (await client.get(url)).status_code == 404
