"""``manage.py dbshell``: psql on the database in use, the password never on its command line."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

from project.db.url import DatabaseURL
from tests.support import run_manage

PASSWORD = "S3cret-dbshell"


def test_dbshell_runs_psql_on_the_configured_database(db_url: DatabaseURL) -> None:
    result = run_manage(
        "dbshell",
        "-tAc",
        "SELECT current_database()",
        env={"DATABASE_URL": db_url.render(hide_password=False)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == db_url.database


def test_the_password_goes_through_the_environment_not_argv(
    db_url: DatabaseURL, tmp_path: Path
) -> None:
    # A stand-in psql first on PATH records what it was given.
    record = tmp_path / "record.txt"
    fake = tmp_path / "psql"
    fake.write_text(
        f'#!/bin/sh\necho "argv: $*" > {record}\necho "password: $PGPASSWORD" >> {record}\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    url = dataclasses.replace(db_url, password=PASSWORD)
    result = run_manage(
        "dbshell",
        "-tAc",
        "SELECT 1",
        env={
            "DATABASE_URL": url.render(hide_password=False),
            "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}",
        },
    )
    assert result.returncode == 0, result.stderr
    argv, password = record.read_text().splitlines()
    assert PASSWORD not in argv
    assert argv == "argv: -tAc SELECT 1"
    assert password == f"password: {PASSWORD}"
