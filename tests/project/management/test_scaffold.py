"""``startapp``'s files: as written they pass their own test; with the commented examples
brought to life, the model, factory, seeder, command and tests work together.

The end-to-end test runs in a copy of the project, its ``manage.py`` and its ``pytest``
as real processes; the repository is never changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.management.scaffold import startapp
from project.testing import databases
from tests.support import ROOT, copy_project, ok, run_manage

PASSWORD = "S3cretPw"


def uncomment(text: str) -> str:
    """Bring a scaffold's examples to life as an editor's "toggle comment" does: drop
    the first "# " (or "#") of every line that starts with "#"."""
    return "".join(
        line[2:] if line.startswith("# ") else line[1:] if line.startswith("#") else line
        for line in text.splitlines(keepends=True)
    )


def test_startapp_examples_compile_as_written_and_uncommented(tmp_path: Path) -> None:
    written = startapp("notes", base_dir=tmp_path)
    sources = {path: path.read_text() for path in written if path.stat().st_size}
    examples = [path.name for path, text in sources.items() if uncomment(text) != text]
    assert sorted(examples) == [
        "api.py",
        "commands.py",
        "factories.py",
        "models.py",
        "seeds.py",
        "test_notes.py",
    ]
    for path, text in sources.items():
        compile(text, str(path), "exec")
        compile(uncomment(text), str(path), "exec")


def _install(project: Path, *labels: str) -> None:
    settings = project / "project" / "settings.py"
    listed = "".join(f'"apps.{label}", ' for label in labels)
    text, count = re.subn(
        r"INSTALLED_APPS: list\[str\] = \[",
        f"INSTALLED_APPS: list[str] = [{listed}",
        settings.read_text(),
    )
    assert count == 1
    settings.write_text(text)


async def _drop_like(url: DatabaseURL, prefix: str) -> None:
    """Drop the test databases named ``prefix...`` (a pytest run's template and clone)."""
    conn = await dbadmin.connect(url.with_database(dbadmin.MAINTENANCE_DATABASE))
    try:
        names = [
            row[0]
            for row in await conn.fetch(
                "SELECT datname FROM pg_database WHERE starts_with(datname, $1)", prefix
            )
        ]
        for name in names:
            await databases.drop(url.with_database(name), conn)
    finally:
        await conn.close()


def test_startapp_examples_work_together_when_uncommented(
    scratch_db: DatabaseURL, db_url: DatabaseURL, tmp_path: Path
) -> None:
    project = copy_project(tmp_path / "project")
    (project / "tests").mkdir()
    (project / "tests" / "__init__.py").write_text((ROOT / "tests" / "__init__.py").read_text())
    plain = startapp("plain", base_dir=project)  # left as written
    lint = [str(path.relative_to(project)) for path in plain]
    for check in (["check"], ["format", "--check"]):  # CI lints a new app as it is
        ok(
            subprocess.run(
                [sys.executable, "-m", "ruff", *check, *lint],
                cwd=project,
                capture_output=True,
                text=True,
                check=False,
            )
        )
    for path in startapp("notes", base_dir=project):
        path.write_text(uncomment(path.read_text()))
    _install(project, "plain", "notes")
    secret = (
        scratch_db if scratch_db.password else dataclasses.replace(scratch_db, password=PASSWORD)
    )
    env = {"DATABASE_URL": secret.render(hide_password=False)}

    def manage(*args: str) -> str:
        return ok(run_manage(*args, env=env, cwd=project))

    manage("migrate")
    wrote, *detected = manage("makemigrations", "-m", "notes").splitlines()
    assert wrote.startswith("Wrote ")
    assert detected == ["  create table notes_example"]
    manage("migrate")
    assert "Seeded 3 rows" in manage("seed", "notes", "--count", "3")
    assert manage("notes-stats") == "3\n"

    # The generated tests, in the copy's own pytest, on databases of their own.
    prefix = f"test_scaffold_{uuid.uuid4().hex[:8]}"
    server = db_url if db_url.password else dataclasses.replace(db_url, password=PASSWORD)
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith("PYTEST_") and k != "DATABASE_URL"
    }
    environ["DATABASE_URL"] = server.with_database(prefix.removeprefix("test_")).render(
        hide_password=False
    )
    try:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "tests/apps",
                "-q",
                "-p",
                "no:cacheprovider",
                "--drop-db",
            ],
            cwd=project,
            env=environ,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        asyncio.run(_drop_like(db_url, prefix))
    assert result.returncode == 0, f"stdout: {result.stdout}\nstderr: {result.stderr}"
    assert "4 passed" in result.stdout
