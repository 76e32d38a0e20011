"""``manage.py prepare``: create if missing, migrate, seed reference data; twice is once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from project.db.url import DatabaseURL
from project.testing import databases
from tests.project.migrate.support import fetch, head, manage, versions
from tests.support import ok


@pytest.fixture
def missing_db(db_url: DatabaseURL) -> Iterator[DatabaseURL]:
    """Return the URL of a database that does not exist yet; dropped afterwards."""
    url = db_url.with_database(f"{db_url.database}_prepare"[:63])
    assert url.database.startswith("test_")
    asyncio.run(databases.drop(url))
    try:
        yield url
    finally:
        asyncio.run(databases.drop(url))


def snapshot(url: DatabaseURL) -> list[tuple[object, ...]]:
    return fetch(
        url,
        "SELECT 'tool', id, name, updated_at FROM tools UNION ALL "
        "SELECT 'agent', id, name, updated_at FROM agents ORDER BY 1, 3",
    )


def test_prepare_creates_migrates_and_seeds_and_then_changes_nothing(
    missing_db: DatabaseURL,
) -> None:
    out = ok(manage("prepare", url=missing_db))
    lines = out.splitlines()
    assert lines[0] == f"Created database {missing_db.database!r}."
    assert f"Applied {head()}" in out
    assert lines[-1].startswith("Reference data: 2 seeders, ")
    assert versions(missing_db) == [head()]
    first = snapshot(missing_db)
    assert {row[0] for row in first} == {"tool", "agent"}
    # No demo data: workflows come only from the demo seeders.
    assert fetch(missing_db, "SELECT count(*) FROM workflows") == [(0,)]

    again = ok(manage("prepare", url=missing_db)).splitlines()
    assert again[0] == f"Database {missing_db.database!r} exists."
    assert again[1] == "No migrations to apply; the database is at head."
    assert snapshot(missing_db) == first  # same rows, same ids, not even touched
    assert versions(missing_db) == [head()]
