"""The no-op check: it agrees with Alembic, and a migrate at head loads neither
SQLAlchemy nor Alembic."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from project.db.url import DatabaseURL
from project.management import call_command
from project.migrate import fastpath
from project.migrate.config import script_directory
from tests.project.migrate.support import ROOT, environment, manage
from tests.support import ok


def test_the_quick_head_check_agrees_with_alembic(
    scratch_db: DatabaseURL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert fastpath.static_heads() == set(script_directory().get_heads())
    assert fastpath.at_head_quickly() is False  # an empty database
    call_command("migrate")
    assert fastpath.at_head_quickly() is True
    call_command("rollback", "--yes")
    assert fastpath.at_head_quickly() is False
    capsys.readouterr()
    call_command("migrate")
    assert "Applied" in capsys.readouterr().out  # not mistaken for a no-op


def test_a_no_op_migrate_imports_no_sqlalchemy_or_alembic(scratch_db: DatabaseURL) -> None:
    ok(manage("migrate", url=scratch_db))
    probe = (
        "import sys; from project.management import main\n"
        "try:\n    main(['migrate'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env=environment(scratch_db),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.splitlines() == ["No migrations to apply; the database is at head.", "[]"]


def _revision_file(versions: Path, name: str, body: str) -> None:
    (versions / f"{name}.py").write_text(f'"""{name}"""\n\n{body}\n')


def test_the_quick_head_check_reads_only_plain_literals(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    monkeypatch.setattr(fastpath, "BASE_DIR", tmp_path)
    assert fastpath.static_heads() == set()
    _revision_file(versions, "a", "revision: str = 'a'\ndown_revision: str | None = None")
    _revision_file(versions, "b", "revision = 'b'\ndown_revision = 'a'")
    _revision_file(versions, "c", "revision = 'c'\ndown_revision = 'a'")
    assert fastpath.static_heads() == {"b", "c"}
    assert fastpath.at_head_quickly() is None  # two heads: Alembic says what to do
    _revision_file(versions, "m", "revision = 'm'\ndown_revision = ('b', 'c')")
    assert fastpath.static_heads() == {"m"}
    _revision_file(versions, "n", "revision = 'n'\ndown_revision = 'm'\nrevision.upper()")
    assert fastpath.static_heads() == {"n"}
    _revision_file(versions, "x", "revision = 'x'\ndown_revision = PARENT")
    assert fastpath.static_heads() is None  # not a literal: Alembic has to import it
    assert fastpath.at_head_quickly() is None
    _revision_file(versions, "x", "revision = make_id()\ndown_revision = 'n'")
    assert fastpath.static_heads() is None
