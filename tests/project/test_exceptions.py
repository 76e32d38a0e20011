"""The exception family's helpers: one line per error, no password in any of it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from project.conf import get_settings, override_settings, settings_from
from project.exceptions import CommandError, first_line, scrub, summary


@pytest.fixture
def secret_settings() -> Iterator[None]:
    previous = get_settings()
    override_settings(
        settings_from(
            {
                "DATABASE_URL": "postgresql://app:pooled-secret@pgbouncer:6432/app",
                "DATABASE_DIRECT_URL": "postgresql://app:direct-secret@db:5432/app",
            }
        )
    )
    try:
        yield
    finally:
        override_settings(previous)


def test_scrub_hides_the_password_of_every_configured_url(secret_settings: None) -> None:
    text = "failed: pooled-secret then direct-secret"
    assert scrub(text) == "failed: *** then ***"


def test_scrub_leaves_text_without_secrets_alone(secret_settings: None) -> None:
    assert scrub("relation tools does not exist") == "relation tools does not exist"


def test_one_line_summaries() -> None:
    assert first_line("\n\n  first\nsecond") == "first"
    assert summary(CommandError("bad\nmore")) == "CommandError: bad"
    assert summary(CommandError()) == "CommandError"
