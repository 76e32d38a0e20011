"""What several test modules share that is not a pytest fixture: running ``manage.py``,
a copy of the project to run it in, hand-written revisions, and checks of an exit."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Mapping
from pathlib import Path

from project import conf

ROOT = Path(__file__).resolve().parent.parent


def run_manage(
    *args: str, env: Mapping[str, str] | None = None, cwd: Path = ROOT, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` as a real process, off a terminal, with no setting but ``env``'s."""
    environ = {k: v for k, v in os.environ.items() if k not in conf.VARIABLES}
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=cwd,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_python(
    *args: str, env: Mapping[str, str], stdin: str = "", timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` in the project as a real process, ``stdin`` as its input."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


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
