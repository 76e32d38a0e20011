"""Which database: ``project.db.target``, the one answer for engines, commands and messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from project.conf import settings_from
from project.db import embedded, target
from project.db.url import DatabaseURL

CONFIGURED = DatabaseURL.parse("postgresql://app:secret@db.example:5432/app")
DIRECT = DatabaseURL.parse("postgresql://app:secret@primary.example:5432/app")
CHOSEN = DatabaseURL.parse("postgresql://test:pw@127.0.0.1:5432/test_x")


@pytest.fixture
def chosen() -> Iterator[None]:
    """Put back whatever ``use_database()`` had chosen."""
    before = target.chosen()
    try:
        yield
    finally:
        target.choose(before)


def test_the_settings_url_answers_when_nothing_is_chosen(chosen: None) -> None:
    target.choose(None)
    settings = settings_from({"DATABASE_URL": CONFIGURED.render(hide_password=False)})
    assert target.configured_url(settings) == CONFIGURED
    assert target.database_url(settings) == CONFIGURED
    assert target.direct_database_url(settings) == CONFIGURED


def test_the_direct_url_is_for_work_that_bypasses_a_pooler(chosen: None) -> None:
    target.choose(None)
    settings = settings_from(
        {
            "DATABASE_URL": CONFIGURED.render(hide_password=False),
            "DATABASE_DIRECT_URL": DIRECT.render(hide_password=False),
        }
    )
    assert target.database_url(settings) == CONFIGURED
    assert target.direct_database_url(settings) == DIRECT


def test_a_chosen_url_wins_over_the_settings_for_every_question(chosen: None) -> None:
    settings = settings_from(
        {
            "DATABASE_URL": CONFIGURED.render(hide_password=False),
            "DATABASE_DIRECT_URL": DIRECT.render(hide_password=False),
        }
    )
    target.choose(CHOSEN)
    assert target.chosen() == CHOSEN
    assert target.configured_url(settings) == CHOSEN
    assert target.database_url(settings) == CHOSEN
    assert target.direct_database_url(settings) == CHOSEN
    assert target.database_label(settings) == str(CHOSEN)
    assert "pw" not in target.database_label(settings)


def test_no_url_means_the_embedded_server_and_the_label_starts_nothing(
    chosen: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target.choose(None)
    settings = settings_from({})
    assert target.configured_url(settings) is None
    monkeypatch.setattr(embedded, "DATA_DIR", tmp_path / "postgres")
    label = target.database_label(settings)
    assert label == (
        f"the embedded PostgreSQL in {tmp_path / 'postgres'} (not running; starts on first use)"
    )
    assert not (tmp_path / "postgres").exists()
