"""What several test modules share that is not a pytest fixture: a copy of the project
to run ``manage.py`` in, hand-written revisions for it, and checks of a command's exit."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def copy_project(root: Path) -> Path:
    """Copy the project (no .venv, .data or .git) to ``root``; return ``root``."""
    root.mkdir(parents=True)
    for name in ("manage.py", "alembic.ini", "pyproject.toml"):
        shutil.copy2(ROOT / name, root / name)
    for name in ("project", "apps", "migrations"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def write_revision(
    project: Path, message: str, down: str, upgrade: str, downgrade: str = "pass"
) -> str:
    """Write a hand-made revision file into ``project``; return its id."""
    rev = uuid.uuid4().hex[:12]
    body = textwrap.dedent(
        f'''\
        """{message}

        Revision ID: {rev}
        Revises: {down}
        """

        import sqlalchemy as sa
        from alembic import op

        revision = {rev!r}
        down_revision = {down!r}
        branch_labels = None
        depends_on = None


        def upgrade() -> None:
            {{upgrade}}


        def downgrade() -> None:
            {{downgrade}}
        '''
    ).format(upgrade=upgrade, downgrade=downgrade)
    path = project / "migrations" / "versions" / f"20990101_000000_{rev}_{message}.py"
    path.write_text(body)
    return rev


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """Assert a clean exit; return stdout."""
    assert result.returncode == 0, f"stdout: {result.stdout}\nstderr: {result.stderr}"
    return result.stdout


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """Assert exit status 1 with one ``Error:`` line on stderr; return it."""
    report = f"status {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == 1, report
    assert "Traceback" not in result.stderr, report
    lines = result.stderr.splitlines()
    assert len(lines) == 1, report
    assert lines[0].startswith("Error: "), report
    return lines[0]
