"""The embedded server: where pgserver keeps its programs (the one adapter), start and stop."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from project.conf import settings_from
from project.db import embedded, target


def test_bin_dir_holds_the_programs_the_project_runs() -> None:
    """If this fails, pgserver moved its binaries: fix ``embedded.bin_dir``."""
    for program in ("psql", "initdb", "pg_ctl", "pg_basebackup", "postgres"):
        assert os.access(embedded.bin_dir() / program, os.X_OK), program


def test_a_fresh_server_starts_with_its_database_and_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "postgres"
    url = embedded.ensure_running(data)
    try:
        monkeypatch.setattr(embedded, "DATA_DIR", data)
        monkeypatch.setattr(target, "_chosen", None)
        assert target.database_label(settings_from({})) == f"{url} (embedded)"
        assert url.database == embedded.DEFAULT_DATABASE
        assert embedded.running_url(data) == url
        # Starting again finds it running, and the database is not created twice.
        assert embedded.ensure_running(data) == url
        embedded._ensure_database(url)
        listed = subprocess.run(
            [str(embedded.bin_dir() / "psql"), "-X", "-tAc", "SELECT datname FROM pg_database"],
            env={**os.environ, **url.libpq_env()},
            capture_output=True,
            text=True,
            check=True,
        )
        assert listed.stdout.split().count(embedded.DEFAULT_DATABASE) == 1
    finally:
        assert embedded.stop(data) is True
    assert embedded.running_url(data) is None
    assert embedded.stop(data) is False
