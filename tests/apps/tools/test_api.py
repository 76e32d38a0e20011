"""``/api/tools`` through the real app and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from apps.tools.factories import ToolFactory
from tests.apiclient import api_client

NEW_TOOL = {"name": "rsi", "tool_type": "technical_indicator", "config": {"period": 14}}


async def test_create_read_update_delete(db_session: AsyncSession) -> None:
    async with api_client() as client:
        created = await client.post("/api/tools", json=NEW_TOOL)
        assert created.status_code == 201, created.text
        tool = created.json()
        assert (tool["name"], tool["description"], tool["is_active"]) == ("rsi", "", True)
        url = f"/api/tools/{tool['id']}"

        read = await client.get(url)
        assert read.status_code == 200
        assert read.json() == tool

        patched = await client.patch(url, json={"description": "momentum", "is_active": False})
        assert patched.status_code == 200, patched.text
        assert (patched.json()["description"], patched.json()["is_active"]) == ("momentum", False)
        assert patched.json()["config"] == {"period": 14}  # untouched: a partial update

        deleted = await client.delete(url)
        assert deleted.status_code == 204
        assert deleted.content == b""
        assert (await client.get(url)).status_code == 404
        assert (await client.patch(url, json={"description": "x"})).status_code == 404
        assert (await client.delete(url)).status_code == 404


async def test_a_taken_name_is_409_and_a_deleted_one_is_free(db_session: AsyncSession) -> None:
    async with api_client() as client:
        first = (await client.post("/api/tools", json=NEW_TOOL)).json()
        again = await client.post("/api/tools", json=NEW_TOOL)
        assert again.status_code == 409
        assert "uq_tools_name_live" in again.json()["detail"]
        other = (await client.post("/api/tools", json={**NEW_TOOL, "name": "macd"})).json()
        rename = await client.patch(f"/api/tools/{other['id']}", json={"name": "rsi"})
        assert rename.status_code == 409

        assert (await client.delete(f"/api/tools/{first['id']}")).status_code == 204
        recreated = await client.post("/api/tools", json=NEW_TOOL)
        assert recreated.status_code == 201
        assert recreated.json()["id"] != first["id"]
    live = await db_session.scalar(
        text("SELECT count(*) FROM tools WHERE name = 'rsi' AND deleted_at IS NULL")
    )
    assert live == 1


async def test_patch_refuses_nulls_and_bad_values(db_session: AsyncSession) -> None:
    tool = await ToolFactory.create(description="kept")
    async with api_client() as client:
        null = await client.patch(f"/api/tools/{tool.id}", json={"name": None})
        enum = await client.patch(f"/api/tools/{tool.id}", json={"tool_type": "laser"})
        unknown = await client.patch(f"/api/tools/{tool.id}", json={"id": str(uuid.uuid4())})
        for response in (null, enum, unknown):
            assert response.status_code == 422, response.text
        assert (await client.get(f"/api/tools/{tool.id}")).json()["description"] == "kept"


async def test_list_pages_and_filters(db_session: AsyncSession) -> None:
    made = await ToolFactory.create_batch(5, tool_type="notification")
    await ToolFactory.create(tool_type="code_analyzer")
    async with api_client() as client:
        first = (await client.get("/api/tools", params={"limit": 2})).json()
        assert len(first["items"]) == 2
        assert first["next"]
        notes = await client.get("/api/tools", params={"tool_type": "notification", "limit": 10})
        bad = await client.get("/api/tools", params={"tool_type": "laser"})
    assert [item["id"] for item in notes.json()["items"]] == [str(t.id) for t in made]
    assert notes.json()["next"] is None
    assert bad.status_code == 422


async def test_paging_under_concurrent_inserts_skips_and_repeats_nothing(
    transactional_db: AsyncEngine,
) -> None:
    async with api_client() as client:
        before = []
        for n in range(30):
            response = await client.post("/api/tools", json={**NEW_TOOL, "name": f"before-{n}"})
            before.append(response.json()["id"])

        async def insert() -> None:
            for n in range(30):
                await client.post("/api/tools", json={**NEW_TOOL, "name": f"during-{n}"})
                await asyncio.sleep(0)

        async def read_all() -> list[str]:
            seen: list[str] = []
            cursor: str | None = None
            while True:
                params: dict[str, str | int] = {"limit": 4}
                if cursor:
                    params["after"] = cursor
                page = (await client.get("/api/tools", params=params)).json()
                seen += [item["id"] for item in page["items"]]
                cursor = page["next"]
                if cursor is None:
                    return seen
                await asyncio.sleep(0)

        _, seen = await asyncio.gather(insert(), read_all())
    assert len(seen) == len(set(seen))  # nothing twice
    assert set(before) <= set(seen)  # nothing that existed skipped
    assert seen[: len(before)] == before  # in key order
