"""The migration commands against a scratch database: migrate, rollback, showmigrations,
sqlmigrate, makemigrations and check.

Tests that need new models or revisions work on a copy of the project in ``tmp_path`` and
run its ``manage.py`` as a subprocess; the repository is never changed.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import pytest

from project import conf
from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.exceptions import CommandError
from project.management import call_command
from project.migrate import api as migrations
from tests.support import copy_project, error_line, ok, run_manage, write_revision

ROOT = Path(__file__).resolve().parents[3]
VERSIONS = ROOT / "migrations" / "versions"
PASSWORD = "S3cretPw"
SETTING_VARIABLES = conf.VARIABLES


def environment(url: DatabaseURL | str, **extra: str) -> dict[str, str]:
    """Return the process environment with only the given settings."""
    environ = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    if isinstance(url, DatabaseURL):
        url = (url if url.password else replace(url, password=PASSWORD)).render(hide_password=False)
    environ["DATABASE_URL"] = url
    environ.update(extra)
    return environ


def manage_argv(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


def manage(
    *args: str, url: DatabaseURL | str, cwd: Path = ROOT, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` as a real process, off a terminal, on ``url``."""
    result = run_manage(*args, env=environment(url, **(env or {})), cwd=cwd)
    assert PASSWORD not in result.stdout + result.stderr
    return result


async def afetch(url: DatabaseURL, query: str) -> list[tuple[Any, ...]]:
    conn = await dbadmin.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(query)]
    finally:
        await conn.close()


def fetch(url: DatabaseURL, query: str) -> list[tuple[Any, ...]]:
    """Run ``query`` on ``url`` in a connection of its own."""
    return asyncio.run(afetch(url, query))


def tables(url: DatabaseURL) -> set[str]:
    rows = fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row[0] for row in rows}


def versions(url: DatabaseURL) -> list[str]:
    if "alembic_version" not in tables(url):
        return []
    return sorted(row[0] for row in fetch(url, "SELECT version_num FROM alembic_version"))


def head() -> str:
    found = migrations.script_directory().get_current_head()
    assert found is not None
    return found


def all_revisions() -> list[str]:
    return [m.revision for m in migrations.showmigrations()]


def output(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    call_command(*args)
    return capsys.readouterr().out


class _NotATerminal:
    def isatty(self) -> bool:
        return False


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
    monkeypatch.setattr(sys, "stdin", _NotATerminal())
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


def test_unknown_revision(scratch_db: DatabaseURL) -> None:
    for args in (("migrate", "nope"), ("sqlmigrate", "nope"), ("migrate", "nope", "--sql")):
        with pytest.raises(CommandError, match="unknown revision 'nope'"):
            call_command(*args)
    assert tables(scratch_db) == set()


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


# --- concurrency and the migration lock ------------------------------------------------


def test_concurrent_migrates_serialize(scratch_db: DatabaseURL) -> None:
    env = environment(scratch_db)
    runs = [
        subprocess.Popen(
            manage_argv("migrate"),
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [run.communicate(timeout=180) for run in runs]
    for run, (out, err) in zip(runs, results, strict=True):
        assert run.returncode == 0, f"stdout: {out}\nstderr: {err}"
        assert err == ""
    assert fetch(scratch_db, "SELECT version_num FROM alembic_version") == [(head(),)]


PLAIN_ALEMBIC = [
    sys.executable,
    "-m",
    "alembic",
    "-c",
    str(ROOT / "alembic.ini"),
    "upgrade",
    "head",
]


@pytest.mark.parametrize("argv", [manage_argv("migrate"), PLAIN_ALEMBIC], ids=["manage", "alembic"])
async def test_migrate_gives_up_when_the_lock_is_held(
    scratch_db: DatabaseURL, argv: list[str]
) -> None:
    holder = await dbadmin.connect(scratch_db)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", migrations.LOCK_KEY)
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=ROOT,
            env=environment(scratch_db, MIGRATE_LOCK_TIMEOUT="1"),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), timeout=120)
        elapsed = time.monotonic() - started
    finally:
        await holder.close()
    result = subprocess.CompletedProcess([], process.returncode or 0, out.decode(), err.decode())
    if argv is PLAIN_ALEMBIC:  # Alembic's own CLI prints the error its way
        assert result.returncode != 0
        assert "another migration is running" in result.stderr
    else:
        line = error_line(result)
        assert "another migration is running" in line
        assert "MIGRATE_LOCK_TIMEOUT" in line
    assert elapsed >= 1
    assert (
        await afetch(scratch_db, "SELECT 1 FROM pg_tables WHERE tablename = 'alembic_version'")
        == []
    )


# --- on a copy of the project ----------------------------------------------------------


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """Copy the project (no .venv, .data or .git) into ``tmp_path``."""
    return copy_project(tmp_path / "project_copy")


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
    assert len(shown) == len(list(migrations.script_directory().walk_revisions())) + 3
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


def test_the_quick_head_check_agrees_with_alembic(
    scratch_db: DatabaseURL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert migrations._static_heads() == set(migrations.script_directory().get_heads())
    assert migrations.at_head_quickly() is False  # an empty database
    call_command("migrate")
    assert migrations.at_head_quickly() is True
    call_command("rollback", "--yes")
    assert migrations.at_head_quickly() is False
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


def test_describe_operations_names_each_change() -> None:
    import sqlalchemy as sa
    from alembic.operations import ops

    upgrade = ops.UpgradeOps(
        ops=[
            ops.CreateTableOp("notes", [sa.Column("id", sa.Integer)]),
            ops.ModifyTableOps(
                "notes",
                [
                    ops.AddColumnOp("notes", sa.Column("title", sa.Text)),
                    ops.AlterColumnOp(
                        "notes",
                        "body",
                        existing_type=sa.String(20),
                        modify_type=sa.Text(),
                        modify_nullable=False,
                    ),
                    ops.DropColumnOp("notes", "old"),
                    ops.CreateIndexOp("ix_notes_title", "notes", ["title"], unique=True),
                    ops.CreateUniqueConstraintOp("uq_notes_body", "notes", ["body"]),
                ],
            ),
            ops.DropIndexOp("ix_gone", "gone"),
            ops.DropTableOp("gone", schema="archive"),
        ]
    )
    assert migrations.describe_operations(upgrade) == [
        "create table notes",
        "add column notes.title",
        "alter column notes.body (type VARCHAR(20) -> TEXT, NOT NULL)",
        "drop column notes.old",
        "add unique index ix_notes_title on notes (title)",
        "create unique constraint uq_notes_body on notes",
        "drop index ix_gone on gone",
        "drop table archive.gone",
    ]


class _Terminal(io.StringIO):
    """Standard input on a terminal, answering the prompts with what it holds."""

    def isatty(self) -> bool:
        return True


def test_downgrade_prompt_names_the_revisions_and_tables(
    scratch_db: DatabaseURL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("migrate")
    revisions = all_revisions()
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
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
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    with pytest.raises(CommandError, match=f"cannot roll back 99 revisions; only {applied}"):
        call_command("rollback", "--steps", "99")
    assert "Continue?" not in capsys.readouterr().out  # nobody was asked
    assert versions(scratch_db) == [head()]


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


def test_alembics_not_up_to_date_error_says_what_to_do() -> None:
    from alembic.util import CommandError as AlembicCommandError

    with pytest.raises(CommandError) as caught, migrations._translated():
        raise AlembicCommandError("Target database is not up to date.")
    assert str(caught.value) == (
        "the database is not at the latest migration; run 'manage.py migrate' first"
    )


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
    monkeypatch.setattr(sys, "stdin", _NotATerminal())
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


def test_alembic_still_has_the_step_function_render_upgrade_uses() -> None:
    """If this fails, Alembic renamed it: fix ``migrations.render_upgrade``."""
    from alembic.script import ScriptDirectory

    assert callable(getattr(ScriptDirectory, "_upgrade_revs", None))
