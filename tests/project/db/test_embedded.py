"""The embedded server's one adapter over pgserver: where its programs are."""

from __future__ import annotations

import os

from project.db import embedded


def test_bin_dir_holds_the_programs_the_project_runs() -> None:
    """If this fails, pgserver moved its binaries: fix ``embedded.bin_dir``."""
    for program in ("psql", "initdb", "pg_ctl", "pg_basebackup", "postgres"):
        assert os.access(embedded.bin_dir() / program, os.X_OK), program
