"""``/api/agents`` through the real app and PostgreSQL."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from apps.tools.factories import ToolFactory
from tests.apiclient import api_client

NEW_AGENT = {
    "name": "analyst",
    "model_provider": "anthropic",
    "model_name": "claude",
    "auth_mode": "sdk",
}


async def test_create_read_update_delete_with_tools(db_session: AsyncSession) -> None:
    first, second = await ToolFactory.create_batch(2)
    async with api_client() as client:
        created = await client.post("/api/agents", json={**NEW_AGENT, "tool_ids": [str(first.id)]})
        assert created.status_code == 201, created.text
        agent = created.json()
        assert agent["tool_ids"] == [str(first.id)]
        url = f"/api/agents/{agent['id']}"
        assert (await client.get(url)).json() == agent

        patched = await client.patch(url, json={"tool_ids": [str(second.id)], "model_name": "x"})
        assert patched.status_code == 200, patched.text
        assert (patched.json()["tool_ids"], patched.json()["model_name"]) == ([str(second.id)], "x")

        page = (await client.get("/api/agents")).json()
        assert [item["id"] for item in page["items"]] == [agent["id"]]
        assert page["next"] is None

        assert (await client.delete(url)).status_code == 204
        assert (await client.get(url)).status_code == 404
        again = await client.post("/api/agents", json=NEW_AGENT)
        assert again.status_code == 201  # the name is free again


async def test_unknown_tools_and_bad_enums_are_422_and_write_nothing(
    db_session: AsyncSession,
) -> None:
    async with api_client() as client:
        unknown = await client.post(
            "/api/agents", json={**NEW_AGENT, "tool_ids": [str(uuid.uuid4())]}
        )
        bad_enum = await client.post("/api/agents", json={**NEW_AGENT, "auth_mode": "magic"})
    assert unknown.status_code == 422
    assert "no such tool" in unknown.json()["detail"]
    assert bad_enum.status_code == 422
    assert await db_session.scalar(text("SELECT count(*) FROM agents")) == 0


async def test_a_taken_name_is_409(db_session: AsyncSession) -> None:
    async with api_client() as client:
        assert (await client.post("/api/agents", json=NEW_AGENT)).status_code == 201
        taken = await client.post("/api/agents", json=NEW_AGENT)
    assert taken.status_code == 409
    assert taken.json()["detail"].startswith("an agent with the same unique key exists")
