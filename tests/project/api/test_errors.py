"""The API's error responses: each family error its status, every message describe()'s one
line, and an unexpected error a JSON 500 with one scrubbed log line."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm.exc import StaleDataError

from project.api import errors
from project.db.concurrency import ConflictError
from project.db.url import DatabaseURL
from project.exceptions import Conflict, InvalidCursor, NotFound, StaleVersion
from tests.apiclient import api_client, settings

SECRET = "pw-s3cret-42"


def _app(engine: AsyncEngine) -> FastAPI:
    app = FastAPI()
    errors.install(app)

    @app.get("/missing")
    async def missing() -> None:
        raise NotFound(f"no tool 7 (asked with {SECRET})\nsecond line")

    @app.get("/taken")
    async def taken() -> None:
        raise Conflict("a tool with the same unique key exists (tools_name_key)")

    @app.get("/stale")
    async def stale() -> None:
        raise StaleVersion("the tool changed since it was read")

    @app.get("/gave-up")
    async def gave_up() -> None:
        raise ConflictError("gave up after 3 conflicting attempts")

    @app.get("/cursor")
    async def cursor() -> None:
        raise InvalidCursor("invalid cursor: pass the 'next' value of the previous page")

    @app.get("/changed")
    async def changed() -> None:
        raise StaleDataError("UPDATE statement on table 'tools' expected to update 1 row(s)")

    @app.get("/out-of-range")
    async def out_of_range() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("select 2147483647 + 1"))

    @app.get("/duplicate")
    async def duplicate() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("create temporary table keyed (id int primary key)"))
            await connection.execute(text("insert into keyed values (1), (1)"))

    @app.get("/refused")
    async def refused() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("select * from no_such_table_here"))

    return app


@pytest.fixture
async def client(db_engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(_app(db_engine)) as http:
        yield http


async def test_each_family_error_answers_its_status_with_one_line(
    client: httpx.AsyncClient,
) -> None:
    url = DatabaseURL(database="d", host="h", username="u", password=SECRET)
    with settings(database_url=url):
        missing = await client.get("/missing")
    assert (missing.status_code, missing.json()) == (404, {"detail": "no tool 7 (asked with ***)"})
    for path in ("/taken", "/stale", "/gave-up"):  # a retried transaction that gave up too
        response = await client.get(path)
        assert response.status_code == 409, path
        assert "\n" not in response.json()["detail"]
    cursor = await client.get("/cursor")
    assert cursor.status_code == 422
    assert cursor.json()["detail"][0]["loc"] == ["query", "after"]


async def test_a_violated_key_is_a_409_naming_the_constraint_not_the_value(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/duplicate")
    assert response.status_code == 409
    assert response.json() == {"detail": "a row with the same unique key exists (keyed_pkey)"}


async def test_a_stale_row_is_a_409_and_a_refused_value_a_422(client: httpx.AsyncClient) -> None:
    changed = await client.get("/changed")
    assert changed.status_code == 409
    assert changed.json() == {"detail": "the row was changed by someone else; read it again"}
    refused = await client.get("/out-of-range")  # integer out of range: SQLSTATE class 22
    assert refused.status_code == 422
    assert refused.json() == {
        "detail": "a value was refused by the database (too long or out of range)"
    }


async def test_an_unexpected_database_error_logs_the_drivers_one_line(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="project.api"):
        response = await client.get("/refused")
    assert (response.status_code, response.json()) == (500, {"detail": "internal server error"})
    assert (
        'GET /refused failed: UndefinedTableError: relation "no_such_table_here" does not exist'
    ) in caplog.messages
