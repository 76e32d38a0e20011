"""The ASGI app: health probes, JSON errors, write access, and what importing it costs."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from project.asgi import create_app
from project.conf import settings_from
from project.db import session as db
from project.db import target
from project.db.url import DatabaseURL
from project.exceptions import ImproperlyConfigured
from project.testing.standby import free_port
from tests.apiclient import api_client, settings
from tests.support import run_python

TOKEN = "a-long-enough-test-token-0123456789"
NEW_TOOL = {"name": "rsi", "tool_type": "technical_indicator"}


async def _tool_rows(session: AsyncSession) -> int:
    return int(await session.scalar(text("SELECT count(*) FROM tools")) or 0)


@pytest.fixture
async def dead_database() -> AsyncIterator[DatabaseURL]:
    """Point project.db at a port where no server listens; put it back afterwards."""
    url, engine = target.chosen(), db._state.engine
    dead = DatabaseURL(database="nowhere", host="127.0.0.1", port=free_port())
    db.set_database_url(dead)
    try:
        yield dead
    finally:
        await db.dispose()
        target.choose(url)
        db._state.engine = engine


# --- health -------------------------------------------------------------------------------


async def test_live_answers_without_the_database(dead_database: DatabaseURL) -> None:
    async with api_client() as client:
        response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json()["status"] == "live"


async def test_ready_at_head(db_engine: AsyncEngine) -> None:
    from project.api.health import migration_heads

    async with api_client() as client:
        response = await client.get("/health/ready")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ready"
    assert response.json()["revision"] == migration_heads()[0]


async def test_ready_is_one_query(db_engine: AsyncEngine) -> None:
    from project.testing.sql import recorded_statements

    async with api_client() as client:
        await client.get("/health/ready")  # the head is read once per process
        # The process's current engine: a transactional_db test may have replaced db_engine's.
        with recorded_statements(db.get_engine()) as statements:
            assert (await client.get("/health/ready")).status_code == 200
    assert [s for s in statements if "alembic_version" in s] == [
        "SELECT version_num FROM alembic_version"
    ]


async def test_ready_is_503_on_an_unmigrated_database(scratch_db: DatabaseURL) -> None:
    async with api_client() as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "revision": None,
        "reason": "the database is not migrated; run 'manage.py migrate'",
    }


async def test_ready_is_503_on_a_database_behind(scratch_db: DatabaseURL) -> None:
    async with db.get_engine().begin() as connection:
        await connection.execute(text("CREATE TABLE alembic_version (version_num varchar(32))"))
        await connection.execute(text("INSERT INTO alembic_version VALUES ('0000old')"))
    async with api_client() as client:
        response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["reason"].startswith("the database is at 0000old, not at head ")


async def test_ready_is_503_quickly_with_the_database_down(dead_database: DatabaseURL) -> None:
    started = time.monotonic()
    async with api_client() as client:
        response = await client.get("/health/ready")
    assert time.monotonic() - started < 3
    assert response.status_code == 503
    assert response.json()["reason"].startswith("the database is unreachable (")


# --- errors -------------------------------------------------------------------------------


async def test_errors_are_json(db_session: AsyncSession) -> None:
    async with api_client() as client:
        missing = await client.get("/api/tools/00000000-0000-7000-8000-000000000000")
        bad_id = await client.get("/api/tools/not-a-uuid")
        bad_cursor = await client.get("/api/tools", params={"after": "not-a-cursor"})
        bad_limit = await client.get("/api/tools", params={"limit": 0})
    assert missing.status_code == 404
    assert "does not exist" in missing.json()["detail"]
    assert bad_id.status_code == 422
    assert bad_id.json()["detail"][0]["loc"] == ["path", "tool_id"]
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["detail"][0]["loc"] == ["query", "after"]
    assert bad_limit.status_code == 422


async def test_malformed_json_and_bad_enums_are_422_and_write_nothing(
    db_session: AsyncSession,
) -> None:
    async with api_client() as client:
        malformed = await client.post(
            "/api/tools", content=b'{"name": "x",', headers={"content-type": "application/json"}
        )
        bad_enum = await client.post("/api/tools", json={**NEW_TOOL, "tool_type": "laser"})
        unknown_field = await client.post("/api/tools", json={**NEW_TOOL, "colour": "red"})
        too_long = await client.post("/api/tools", json={**NEW_TOOL, "name": "x" * 201})
    for response in (malformed, bad_enum, unknown_field, too_long):
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/json"
    assert malformed.json()["detail"][0]["type"] == "json_invalid"
    assert bad_enum.json()["detail"][0]["loc"] == ["body", "tool_type"]
    assert "laser" not in bad_enum.text  # the input is not echoed back
    assert await _tool_rows(db_session) == 0


async def test_an_unexpected_error_is_a_json_500_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = DatabaseURL(database="d", host="h", username="u", password="pw-s3cret-42")
    app = create_app()

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("could not log in with pw-s3cret-42")

    with settings(database_url=url), caplog.at_level(logging.ERROR, logger="project.api"):
        async with api_client(app) as client:
            response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}
    assert "pw-s3cret-42" not in caplog.text
    assert "GET /boom failed: RuntimeError: could not log in with ***" in caplog.text


async def test_openapi_documents_the_schemas() -> None:
    async with api_client() as client:
        document = (await client.get("/openapi.json")).json()
        docs = await client.get("/docs")
    assert docs.status_code == 200
    assert {"/api/tools", "/api/tools/{tool_id}", "/health/ready"} <= set(document["paths"])
    schemas = document["components"]["schemas"]
    assert set(schemas["ToolOut"]["properties"]) >= {"id", "name", "tool_type", "created_at"}
    assert "Page_ToolOut_" in schemas
    assert "HTTPBearer" in document["components"]["securitySchemes"]


# --- write access -------------------------------------------------------------------------


async def test_production_writes_need_a_valid_token(db_session: AsyncSession) -> None:
    digest = hashlib.sha256(TOKEN.encode()).hexdigest()
    with settings(environment="production", api_token_hashes=(digest,)):
        async with api_client() as client:
            missing = await client.post("/api/tools", json=NEW_TOOL)
            wrong = await client.post(
                "/api/tools", json=NEW_TOOL, headers={"Authorization": "Bearer wrong-token"}
            )
            basic = await client.post(
                "/api/tools", json=NEW_TOOL, headers={"Authorization": "Basic dTpw"}
            )
            assert await _tool_rows(db_session) == 0
            reads = await client.get("/api/tools")
            good = await client.post(
                "/api/tools", json=NEW_TOOL, headers={"Authorization": f"Bearer {TOKEN}"}
            )
    for response in (missing, wrong, basic):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in response.text
    assert reads.status_code == 200
    assert good.status_code == 201, good.text
    assert await _tool_rows(db_session) == 1


async def test_production_without_tokens_refuses_every_write(db_session: AsyncSession) -> None:
    with settings(environment="production", api_token_hashes=()):
        async with api_client() as client:
            response = await client.post(
                "/api/tools", json=NEW_TOOL, headers={"Authorization": f"Bearer {TOKEN}"}
            )
    assert response.status_code == 401
    assert await _tool_rows(db_session) == 0


@pytest.mark.parametrize(
    ("host", "status"),
    [("127.0.0.1", 201), ("127.5.6.7", 201), ("::1", 201), ("10.1.2.3", 403), ("testclient", 403)],
)
async def test_development_without_tokens_writes_only_from_loopback(
    db_session: AsyncSession, host: str, status: int
) -> None:
    with settings(environment="development", api_token_hashes=()):
        async with api_client(client=(host, 5000)) as client:
            response = await client.post("/api/tools", json=NEW_TOOL)
            reads = await client.get("/api/tools")
    assert response.status_code == status, response.text
    assert reads.status_code == 200
    assert await _tool_rows(db_session) == (1 if status == 201 else 0)


def test_api_tokens_are_kept_as_hashes() -> None:
    settings_ = settings_from({"API_TOKENS": f" {TOKEN} , sha256:{'ab' * 32},"})
    assert settings_.api_token_hashes == (hashlib.sha256(TOKEN.encode()).hexdigest(), "ab" * 32)
    assert TOKEN not in repr(settings_)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("short-secret", "API_TOKENS entry 1 is shorter than 16 characters"),
        (f"{TOKEN},sha256:xyz", "API_TOKENS entry 2 is not sha256: and 64 hex digits"),
    ],
)
def test_bad_api_tokens_are_refused_without_showing_them(raw: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message) as caught:
        settings_from({"API_TOKENS": raw})
    assert "short-secret" not in str(caught.value)
    assert TOKEN not in str(caught.value)


# --- import -------------------------------------------------------------------------------


def test_importing_the_app_connects_to_nothing() -> None:
    # A server that is not there: any connection attempt at import would fail or hang.
    env = {**os.environ, "DATABASE_URL": f"postgresql://u:p@127.0.0.1:{free_port()}/none"}
    code = "import project.asgi; print(len(project.asgi.app.routes))"
    result = run_python("-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) > 5


def test_serving_freezes_startup_and_collects_the_young_generation_less_often() -> None:
    # In a process of its own: the collector's settings are the process's.
    env = {**os.environ, "DATABASE_URL": f"postgresql://u:p@127.0.0.1:{free_port()}/none"}
    code = """if True:
        import asyncio, gc
        from project import asgi

        async def serve_twice():
            for _ in range(2):
                async with asgi.app.router.lifespan_context(asgi.app):
                    print(gc.get_freeze_count(), gc.get_threshold()[0])

        print(gc.get_freeze_count(), gc.get_threshold()[0])
        asyncio.run(serve_twice())
    """
    result = run_python("-c", code, env=env)
    assert result.returncode == 0, result.stderr
    before, first, second = (line.split() for line in result.stdout.splitlines())
    assert before == ["0", "700"]
    assert int(first[0]) > 10_000  # the app, the models, FastAPI and SQLAlchemy
    assert first[1] == second[1] == "10000"
    # Once per process: a second freeze would add what was built since the first.
    assert int(second[0]) <= int(first[0])
