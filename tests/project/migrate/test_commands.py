"""The migration commands against a scratch database: migrate, rollback, showmigrations,
sqlmigrate, makemigrations and check.

Tests that need new models or revisions work on a copy of the project in ``tmp_path`` and
run its ``manage.py`` as a subprocess; the repository is never changed.
"""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from project.db.url import DatabaseURL
from project.exceptions import CommandError
from project.management import call_command
from project.migrate.config import script_directory
from tests.project.migrate.support import (
    ROOT,
    VERSIONS,
    NotATerminal,
    all_revisions,
    head,
    manage,
    output,
    tables,
    versions,
)
from tests.support import error_line, ok, write_revision

# --- in-process, on the repository's migrations -----------------------------------------


def test_migrate_round_trip(scratch_db: DatabaseURL, capsys: pytest.CaptureFixture[str]) -> None:
    revisions = all_revisions()
    assert revisions[-1] == head()
    shown = output(capsys, "showmigrations").splitlines()
    assert [line[:4] for line in shown] == ["[ ] "] * len(revisions)
    assert [line.split()[2] for line in shown] == revisions  # oldest first

    out = output(capsys, "migrate")
    assert f"Applied {head()}" in out
    assert out.endswith("The database is up to date.\n")
    assert [line[:4] for line in output(capsys, "showmigrations").splitlines()] == ["[X] "] * len(
        revisions
    )
    assert versions(scratch_db) == [head()]

    assert output(capsys, "migrate") == "No migrations to apply; the database is at head.\n"

    out = output(capsys, "rollback", "--yes")
    assert f"Unapplied {head()}" in out
    assert output(capsys, "showmigrations").splitlines()[-1].startswith(f"[ ] {head()}")

    output(capsys, "migrate")
    assert output(capsys, "showmigrations").splitlines()[-1].startswith(f"[X] {head()}")

    out = output(capsys, "migrate", "base", "--yes")
    assert f"Unapplied {revisions[0]}" in out
    assert all(line.startswith("[ ] ") for line in output(capsys, "showmigrations").splitlines())
    assert versions(scratch_db) == []
    assert output(capsys, "migrate", "base") == "No migrations to apply; the database is at base.\n"
    with pytest.raises(CommandError, match="nothing to roll back"):
        call_command("rollback", "--yes")


def test_migrate_to_a_named_revision(
    scratch_db: DatabaseURL, capsys: pytest.CaptureFixture[str]
) -> None:
    out = output(capsys, "migrate", head()[:6])
    assert out.endswith(f"Migrated to {head()}.\n")
    assert output(capsys, "migrate", head()) == (
        f"No migrations to apply; the database is at {head()}.\n"
    )


def test_downgrade_off_a_terminal_needs_yes(
    scratch_db: DatabaseURL, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_command("migrate")
    revisions = all_revisions()
    older = revisions[-2] if len(revisions) > 1 else "base"
    monkeypatch.setattr(sys, "stdin", NotATerminal())
    with pytest.raises(CommandError, match="pass --yes"):
        call_command("migrate", older)
    with pytest.raises(CommandError, match="pass --yes"):
        call_command("migrate", "base")
    with pytest.raises(CommandError, match="pass --yes"):
        call_command("rollback")
    assert versions(scratch_db) == [head()]


def test_rollback_more_steps_than_applied(scratch_db: DatabaseURL) -> None:
    call_command("migrate")
    applied = len(all_revisions())
    with pytest.raises(CommandError, match=f"cannot roll back 99 revisions; only {applied}"):
        call_command("rollback", "--steps", "99", "--yes")
    assert versions(scratch_db) == [head()]


def test_migrate_sql_leaves_the_database_alone(
    scratch_db: DatabaseURL, capsys: pytest.CaptureFixture[str]
) -> None:
    out = output(capsys, "migrate", "--sql")
    assert "CREATE TABLE alembic_version" in out
    assert "INSERT INTO alembic_version (version_num) VALUES" in out
    assert f"'{head()}'" in out
    assert out.rstrip().endswith("COMMIT;")
    assert tables(scratch_db) == set()


def test_migrate_sql_needs_no_database() -> None:
    result = manage("migrate", "--sql", url="postgresql://u:S3cretPw@127.0.0.1:1/test_nowhere")
    assert "CREATE TABLE alembic_version" in ok(result)


def test_sqlmigrate(scratch_db: DatabaseURL, capsys: pytest.CaptureFixture[str]) -> None:
    out = output(capsys, "sqlmigrate", head())
    assert "alembic_version" in out
    assert f"'{head()}'" in out
    assert output(capsys, "sqlmigrate", "head") == out
    assert tables(scratch_db) == set()


def test_makemigrations_without_changes_writes_nothing(
    scratch_db: DatabaseURL, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("migrate")
    capsys.readouterr()
    before = sorted(VERSIONS.iterdir())
    try:
        assert output(capsys, "makemigrations") == "No changes detected.\n"
        assert output(capsys, "makemigrations", "--check") == (
            "No changes: the models match the migrations.\n"
        )
        assert output(capsys, "makemigrations", "--merge") == (
            "Nothing to merge: there is one head.\n"
        )
    finally:
        written = set(VERSIONS.iterdir()) - set(before)
        for path in written:  # never leave a stray revision in the repository
            path.unlink()
    assert written == set()


def test_makemigrations_check_exits_0_when_clean(scratch_db: DatabaseURL) -> None:
    call_command("migrate")
    assert "No changes" in ok(manage("makemigrations", "--check", url=scratch_db))


def test_model_changes_need_a_migrated_database(scratch_db: DatabaseURL) -> None:
    with pytest.raises(CommandError, match=r"run 'manage\.py migrate' first"):
        call_command("makemigrations", "--check")


def test_check_on_a_migrated_database(scratch_db: DatabaseURL) -> None:
    call_command("migrate")
    result = manage("check", url=scratch_db)
    out = ok(result)
    assert out.endswith("No problems found.\n")
    assert f"migrations: one head ({head()})" in out
    assert "models: match the migrations" in out
    assert result.stderr == ""


def test_check_on_an_unmigrated_database(scratch_db: DatabaseURL) -> None:
    result = manage("check", url=scratch_db)
    assert result.returncode == 1
    assert "problem: models: the database is not at the latest migration" in result.stderr
    assert result.stderr.splitlines()[-1] == "Error: 1 problem found"


def test_check_deploy_reports_debug(scratch_db: DatabaseURL) -> None:
    call_command("migrate")
    result = manage("check", "--deploy", url=scratch_db, env={"DEBUG": "true"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert "problem: DEBUG is on; it echoes SQL to the logs" in lines
    assert lines[-1].startswith("Error: ")
    assert lines[-1].endswith(" found")
    assert "No problems found." not in result.stdout


def test_check_deploy_passes_with_production_settings(scratch_db: DatabaseURL) -> None:
    call_command("migrate")
    production = {"ENVIRONMENT": "production", "API_TOKENS": "deploy-check-token-0123456789"}
    result = manage("check", "--deploy", url=scratch_db, env=production)
    assert ok(result).endswith("No problems found.\n")


def version_files(project: Path) -> set[str]:
    return {p.name for p in (project / "migrations" / "versions").glob("*.py")}


SHOP_MODELS = '''\
"""The shop app's models."""

from sqlalchemy.orm import Mapped, mapped_column

from project.models import Base


class Item(Base):
    __tablename__ = "shop_item"

    name: Mapped[str] = mapped_column(unique=True)
'''


def test_new_app_migration_lifecycle(scratch_db: DatabaseURL, project_copy: Path) -> None:
    initial = head()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return manage(*args, url=scratch_db, cwd=project_copy)

    ok(run("migrate"))
    out = ok(run("startapp", "shop"))
    assert (project_copy / "apps" / "shop" / "models.py").is_file()
    assert not (ROOT / "apps" / "shop").exists()
    assert "Add 'apps.shop' to INSTALLED_APPS" in out
    settings = project_copy / "project" / "settings.py"
    text, count = re.subn(
        r"INSTALLED_APPS: list\[str\] = \[",
        'INSTALLED_APPS: list[str] = ["apps.shop", ',
        settings.read_text(),
    )
    assert count == 1
    settings.write_text(text)
    (project_copy / "apps" / "shop" / "models.py").write_text(SHOP_MODELS)

    # Models ahead of the migrations: --check fails and writes nothing.
    before = version_files(project_copy)
    checked = run("makemigrations", "--check")
    assert "the models differ from the migrations" in error_line(checked)
    assert "add_table shop_item" in checked.stdout
    assert version_files(project_copy) == before

    out = ok(run("makemigrations", "-m", "shop"))
    [written] = version_files(project_copy) - before
    # What was detected follows the path, one operation a line.
    wrote, *detected = out.splitlines()
    assert wrote == f"Wrote {project_copy / 'migrations' / 'versions' / written}"
    assert detected == ["  create table shop_item"]
    match = re.fullmatch(r"(\d{8}_\d{6})_([0-9a-f]{12})_shop\.py", written)
    assert match is not None, written
    stamp = datetime.strptime(match[1], "%Y%m%d_%H%M%S").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=10)  # UTC, not local time
    shop_rev = match[2]
    source = (project_copy / "migrations" / "versions" / written).read_text()
    assert "create_table('shop_item'" in source

    assert "run 'manage.py migrate' first" in error_line(run("makemigrations", "--check"))
    assert f"Applied {shop_rev} shop" in ok(run("migrate"))
    ok(run("makemigrations", "--check"))
    assert ok(run("makemigrations")) == "No changes detected.\n"
    assert version_files(project_copy) == before | {written}
    assert "shop_item" in tables(scratch_db)
    assert versions(scratch_db) == [shop_rev]

    assert "CREATE TABLE shop_item" in ok(run("sqlmigrate", shop_rev))
    assert ok(run("migrate", "--sql")).startswith("-- nothing to do")  # already at head

    # An older revision is a downgrade: --yes off a terminal, then it runs.
    assert "pass --yes" in error_line(run("migrate", initial))
    assert versions(scratch_db) == [shop_rev]
    ok(run("migrate", initial, "--yes"))
    assert "shop_item" not in tables(scratch_db)
    assert f"[ ] {shop_rev} shop" in ok(run("showmigrations"))
    ok(run("migrate"))

    # A new column is detected by --check and autogenerated.
    models = project_copy / "apps" / "shop" / "models.py"
    price = "    price: Mapped[int] = mapped_column(default=0, index=True)\n"
    models.write_text(SHOP_MODELS + price)
    checked = run("makemigrations", "--check")
    assert "2 changes" in error_line(checked)
    assert "add_column" in checked.stdout
    assert "price" in checked.stdout
    before = version_files(project_copy)
    price_out = ok(run("makemigrations", "-m", "price")).splitlines()
    # The index on the existing table comes in a revision of its own, built concurrently.
    assert [line for line in price_out if not line.startswith("Wrote ")] == [
        "  add column shop_item.price",
        "  add index ix_shop_item_price on shop_item (price)",
    ]
    added, concurrent = sorted(version_files(project_copy) - before, key=len)
    assert concurrent.endswith("_price_concurrently.py")
    source = (project_copy / "migrations" / "versions" / added).read_text()
    assert "op.add_column('shop_item'" in source
    assert "'price'" in source
    ok(run("migrate"))
    assert ok(run("check")).endswith("No problems found.\n")

    assert "already exists" in error_line(run("startapp", "shop"))


def test_multiple_heads(scratch_db: DatabaseURL, project_copy: Path) -> None:
    initial = head()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return manage(*args, url=scratch_db, cwd=project_copy)

    left = write_revision(
        project_copy, "left", initial, "op.create_table('left_t', sa.Column('id', sa.Integer))"
    )
    right = write_revision(
        project_copy, "right", initial, "op.create_table('right_t', sa.Column('id', sa.Integer))"
    )
    for args in (("migrate",), ("makemigrations",), ("makemigrations", "--check")):
        line = error_line(run(*args))
        assert "2 heads" in line
        assert "'manage.py makemigrations --merge'" in line
        assert left in line
        assert right in line
    checked = run("check")
    assert checked.returncode == 1
    assert "problem: migrations: 2 heads; run 'manage.py makemigrations --merge'" in (
        checked.stderr
    )
    assert tables(scratch_db) == set()

    before = version_files(project_copy)
    out = ok(run("makemigrations", "--merge"))
    [merge] = version_files(project_copy) - before
    assert out.startswith("Wrote ")
    assert merge in out
    source = (project_copy / "migrations" / "versions" / merge).read_text()
    assert left in source
    assert right in source
    assert "Nothing to merge" in ok(run("makemigrations", "--merge"))
    named = re.fullmatch(r"\d{8}_\d{6}_([0-9a-f]{12})_merge\.py", merge)
    assert named is not None, merge

    # The merge revision's own SQL: no table of either branch.
    merge_sql = ok(run("sqlmigrate", named[1]))
    assert f"-> {named[1]}" in merge_sql
    assert "CREATE TABLE" not in merge_sql
    assert "CREATE TABLE left_t" in ok(run("sqlmigrate", left))

    ok(run("migrate"))
    assert {"left_t", "right_t"} <= tables(scratch_db)
    shown = ok(run("showmigrations")).splitlines()
    assert len(shown) == len(list(script_directory().walk_revisions())) + 3
    assert all(line.startswith("[X] ") for line in shown)
    assert len(versions(scratch_db)) == 1
    # One head again; the hand-made tables have no models, so check reports only those.
    checked = run("check")
    assert "migrations: one head" in checked.stdout
    assert "problem: models: 2 changes not in a migration" in checked.stderr


def test_failing_revision_is_rolled_back(scratch_db: DatabaseURL, project_copy: Path) -> None:
    initial = head()
    bad = write_revision(
        project_copy,
        "doomed",
        initial,
        "op.create_table('doomed', sa.Column('id', sa.Integer))\n    op.execute('NOT SQL')",
    )
    ok(manage("migrate", initial, url=scratch_db, cwd=project_copy))
    assert versions(scratch_db) == [initial]

    line = error_line(manage("migrate", url=scratch_db, cwd=project_copy))
    assert f"revision {bad} failed and was rolled back" in line
    assert f"the database is at {initial}" in line
    assert "doomed" not in tables(scratch_db)
    assert versions(scratch_db) == [initial]


def test_migrate_sql_starts_from_the_database_and_renders_downgrades(
    scratch_db: DatabaseURL, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("migrate")
    capsys.readouterr()
    first = all_revisions()[0]
    out = output(capsys, "migrate", first, "--sql")
    assert "Running downgrade" in out
    assert "Running upgrade" not in out
    assert "CREATE TABLE alembic_version" not in out
    assert output(capsys, "migrate", "--sql").startswith("-- nothing to do")
    assert versions(scratch_db) == [head()]  # nothing ran


def test_makemigrations_on_a_database_behind_says_to_migrate(scratch_db: DatabaseURL) -> None:
    before = set(VERSIONS.iterdir())
    try:
        line = error_line(manage("makemigrations", url=scratch_db))
        first = all_revisions()[0]
        call_command("migrate", first)
        with pytest.raises(CommandError) as behind:
            call_command("makemigrations")
    finally:
        written = set(VERSIONS.iterdir()) - before
        for path in written:  # never leave a stray revision in the repository
            path.unlink()
    assert written == set()
    assert line == (
        f"Error: the database is not at the latest migration (at base, head is {head()}); "
        "run 'manage.py migrate' first"
    )
    assert str(behind.value).startswith(
        f"the database is not at the latest migration (at {first}, head is {head()})"
    )


def test_alembic_still_has_what_merge_sql_builds_its_steps_with() -> None:
    """If this fails, Alembic moved its step objects: fix ``commands.merge_sql``."""
    from alembic.runtime.migration import MigrationStep

    script = script_directory()
    [step] = [
        MigrationStep.upgrade_from_script(script.revision_map, rev)
        for rev in script.iterate_revisions(head(), all_revisions()[-2])
    ]
    assert step.is_upgrade
    assert step.revision.revision == head()
