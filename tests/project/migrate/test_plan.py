"""What a downgrade confirms before it runs: the revisions it unapplies and the tables it
drops, checked before anyone is asked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest

from project.db.url import DatabaseURL
from project.exceptions import CommandError
from project.management import call_command
from project.migrate.plan import Migration, Plan, dropped_tables, pending
from tests.project.migrate.support import (
    Terminal,
    all_revisions,
    head,
    manage,
    tables,
    versions,
)
from tests.support import error_line, ok, write_revision


def test_downgrade_prompt_names_the_revisions_and_tables(
    scratch_db: DatabaseURL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("migrate")
    revisions = all_revisions()
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    with pytest.raises(click.Abort):
        call_command("migrate", revisions[0])
    prompt = capsys.readouterr().out
    assert prompt.startswith(
        f"This will downgrade the database to {revisions[0]}, unapplying {revisions[-1]} ("
    )
    for revision in revisions[1:]:
        assert f" {revision} (" in prompt
    assert " and dropping tables " in prompt
    assert "agents" in prompt.split(" and dropping tables ")[1]
    assert prompt.rstrip().endswith("Continue? [y/N]:")
    assert versions(scratch_db) == [head()]


def test_downgrade_confirmation_names_what_it_unapplies_and_drops(
    scratch_db: DatabaseURL, project_copy: Path
) -> None:
    initial = head()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return manage(*args, url=scratch_db, cwd=project_copy)

    notes = write_revision(
        project_copy,
        "notes",
        initial,
        "op.create_table('notes', sa.Column('id', sa.Integer))",
        "op.drop_table('notes')",
    )
    tags = write_revision(
        project_copy,
        "tags",
        notes,
        "op.create_table('tags', sa.Column('id', sa.Integer))\n"
        "    op.add_column('notes', sa.Column('tag', sa.Integer))",
        "op.drop_column('notes', 'tag')\n    op.drop_table('tags')",
    )
    ok(run("migrate"))
    assert error_line(run("migrate", initial)) == (
        f"Error: this would downgrade the database to {initial}, unapplying {tags} (tags), "
        f"{notes} (notes) and dropping tables tags, notes; pass --yes to confirm"
    )
    assert error_line(run("rollback")) == (
        f"Error: this would roll back 1 revision to {notes}, unapplying {tags} (tags) "
        "and dropping table tags; pass --yes to confirm"
    )
    assert versions(scratch_db) == [tags]
    production = manage(
        "migrate", initial, url=scratch_db, cwd=project_copy, env={"ENVIRONMENT": "production"}
    )
    assert "refusing to downgrade the database to" in error_line(production)
    assert "dropping tables tags, notes with ENVIRONMENT=production" in error_line(production)
    ok(run("rollback", "--steps", "2", "--yes"))
    assert versions(scratch_db) == [initial]
    assert {"tags", "notes"}.isdisjoint(tables(scratch_db))


def test_rollback_checks_the_steps_before_asking(
    scratch_db: DatabaseURL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("migrate")
    applied = len(all_revisions())
    line = error_line(manage("rollback", "--steps", "99", url=scratch_db))
    assert line == f"Error: cannot roll back 99 revisions; only {applied} applied"
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    with pytest.raises(CommandError, match=f"cannot roll back 99 revisions; only {applied}"):
        call_command("rollback", "--steps", "99")
    assert "Continue?" not in capsys.readouterr().out  # nobody was asked
    assert versions(scratch_db) == [head()]


def test_a_plan_says_when_it_cannot_tell_the_dropped_tables() -> None:
    unknown = Plan("downgrade", "base", ("abc",), (Migration("abc", "", applied=True),), None)
    assert unknown.describe() == (
        "downgrade the database to base, unapplying abc "
        "(which tables it drops is unknown: its SQL cannot be rendered offline)"
    )
    assert dropped_tables(("nope",), "base") is None  # Alembic cannot render it
    assert pending(Plan("noop", "head", (head(),))) == []
    assert pending(Plan("downgrade", "base", (head(),))) == []
    assert [m.revision for m in pending(Plan("upgrade", "head"))] == all_revisions()
