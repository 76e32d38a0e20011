"""Revisions by name and by relative step (-1, +2), counted on Alembic's graph."""

from __future__ import annotations

import shutil
import sys
import uuid
from pathlib import Path

import pytest

from project.db.url import DatabaseURL
from project.exceptions import CommandError
from project.management import call_command
from project.migrate import graph
from project.migrate.config import script_directory
from tests.project.migrate.support import (
    ROOT,
    NotATerminal,
    all_revisions,
    head,
    manage,
    output,
    tables,
    versions,
)
from tests.support import error_line, ok, write_revision


def test_unknown_revision(scratch_db: DatabaseURL) -> None:
    for args in (("migrate", "nope"), ("sqlmigrate", "nope"), ("migrate", "nope", "--sql")):
        with pytest.raises(CommandError, match="unknown revision 'nope'"):
            call_command(*args)
    assert tables(scratch_db) == set()


def test_migrate_relative_steps(
    scratch_db: DatabaseURL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    revisions = all_revisions()
    out = output(capsys, "migrate", "+1")
    assert out == f"  Applied {revisions[0]} initial\nMigrated to {revisions[0]}.\n"
    with pytest.raises(
        CommandError, match=f"cannot upgrade 9 revisions; only {len(revisions) - 1}"
    ):
        call_command("migrate", "+9")
    assert output(capsys, "migrate", f"+{len(revisions) - 1}").endswith(f"Migrated to {head()}.\n")
    with pytest.raises(CommandError, match=r"^cannot upgrade 1 revision; the database is at head$"):
        call_command("migrate", "+1")

    # -1 is a downgrade like any other: it is confirmed first, naming what it unapplies.
    monkeypatch.setattr(sys, "stdin", NotATerminal())
    with pytest.raises(CommandError) as refused:
        call_command("migrate", "-1")
    assert str(refused.value).startswith(
        f"this would downgrade the database to {revisions[-2]}, unapplying {revisions[-1]} ("
    )
    assert str(refused.value).endswith("; pass --yes to confirm")
    sql = output(capsys, "migrate", "-1", "--sql")
    assert f"Running downgrade {revisions[-1]} -> {revisions[-2]}" in sql
    assert versions(scratch_db) == [head()]
    assert f"Unapplied {revisions[-1]}" in output(capsys, "migrate", "--yes", "-1")
    assert versions(scratch_db) == [revisions[-2]]
    with pytest.raises(
        CommandError, match=f"cannot roll back 9 revisions; only {len(revisions) - 1}"
    ):
        call_command("migrate", "-9", "--yes")
    with pytest.raises(CommandError, match=r"sqlmigrate needs one revision, got '\+1'"):
        call_command("sqlmigrate", "+1")
    assert versions(scratch_db) == [revisions[-2]]


def test_migrate_minus_one_on_the_command_line(scratch_db: DatabaseURL) -> None:
    revisions = all_revisions()
    ok(manage("migrate", url=scratch_db))
    assert "pass --yes" in error_line(manage("migrate", "-1", url=scratch_db))
    assert f"Unapplied {revisions[-1]}" in ok(manage("migrate", "-1", "--yes", url=scratch_db))
    assert versions(scratch_db) == [revisions[-2]]
    assert f"Applied {revisions[-1]}" in ok(manage("migrate", "+1", url=scratch_db))
    assert versions(scratch_db) == [head()]
    usage = manage("migrate", "--nope", url=scratch_db)  # a real unknown option still is one
    assert usage.returncode == 2
    assert "No such option '--nope'" in usage.stderr


# --- on the graph alone, without a database -----------------------------------------------


def test_resolve_names_revisions() -> None:
    script = script_directory()
    assert graph.resolve(script, head()[:6]) == head()
    assert graph.resolve(script, "zero") == "base"
    assert graph.resolve(script, "heads") == "heads"
    assert graph.resolve(script, "-1") == "-1"
    with pytest.raises(
        CommandError, match=r"unknown revision 'nope'; see 'manage\.py showmigrations'"
    ):
        graph.resolve(script, "nope")


def test_direction_from_where_the_database_is() -> None:
    script = script_directory()
    first, *_, last = all_revisions()
    assert graph.direction(script, (), "base") == "noop"
    assert graph.direction(script, (last,), "base") == "downgrade"
    assert graph.direction(script, (last,), "head") == "noop"
    assert graph.direction(script, (first,), "head") == "upgrade"
    assert graph.direction(script, (last,), last) == "noop"
    assert graph.direction(script, (last,), first) == "downgrade"
    assert graph.direction(script, (first,), last) == "upgrade"


def test_relative_steps_count_on_the_graph() -> None:
    script = script_directory()
    revisions = all_revisions()
    assert graph.absolute(script, (), "+1") == revisions[0]
    assert graph.absolute(script, (revisions[-1],), "-1") == revisions[-2]
    assert graph.absolute(script, (revisions[-1],), f"-{len(revisions)}") == "base"
    assert graph.absolute(script, (), head()) == head()
    with pytest.raises(CommandError, match=r"^nothing to roll back: no migration is applied$"):
        graph.steps_back(script, (), 1)


def test_require_at_head_names_both_revisions() -> None:
    script = script_directory()
    graph.require_at_head(script, (head(),))
    with pytest.raises(CommandError) as behind:
        graph.require_at_head(script, ())
    assert str(behind.value) == (
        f"the database is not at the latest migration (at base, head is {head()}); "
        "run 'manage.py migrate' first"
    )


def write_merge(project: Path, parents: tuple[str, ...]) -> str:
    """Write a merge revision of ``parents`` into ``project``; return its id."""
    rev = uuid.uuid4().hex[:12]
    (project / "migrations" / "versions" / f"20990102_000000_{rev}_merge.py").write_text(
        f'"""merge"""\n\nrevision = {rev!r}\ndown_revision = {parents!r}\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    return rev


def test_branches_need_a_named_revision(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    shutil.copytree(ROOT / "migrations", tmp_path / "migrations")
    left = write_revision(tmp_path, "left", head(), "pass")
    right = write_revision(tmp_path, "right", head(), "pass")
    script = ScriptDirectory(str(tmp_path / "migrations"))
    with pytest.raises(CommandError, match=r"the migrations have 2 heads \(.*\); run 'manage"):
        graph.require_single_head(script)
    with pytest.raises(CommandError, match="the database is at 2 heads"):
        graph.steps_back(script, (left, right), 1)

    merged = write_merge(tmp_path, (left, right))
    script = ScriptDirectory(str(tmp_path / "migrations"))
    graph.require_single_head(script)
    assert graph.applied(script, (merged,)) >= {left, right, head()}
    with pytest.raises(CommandError, match=f"past merge revision {merged}; name the revision"):
        graph.steps_back(script, (merged,), 2)
    with pytest.raises(CommandError, match="cannot count 2 revisions forward across branches"):
        graph.steps_forward(script, (head(),), 2)
    assert graph.steps_forward(script, (left, right), 1) == merged
