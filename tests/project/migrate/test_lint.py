"""The migration linter: each rule on an unsafe and a safe example, the reviewed marker,
``lintmigrations`` and ``migrate``'s refusal, ``--check`` and ``--plan``.

The rules are checked on SQL as ``migrate --sql`` renders it (in process, fast); the
commands run as real processes on a copy of the project with hand-written revisions.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from project.db.url import DatabaseURL
from project.migrate import lint as migration_lint
from tests.project.migrate.support import all_revisions, fetch, head, manage, tables, versions
from tests.support import error_line, ok, run_manage, write_revision

# An earlier revision made these tables: the rules apply to them.
EARLIER = """\
BEGIN;
-- Running upgrade  -> r1
CREATE TABLE items (id integer PRIMARY KEY, name varchar(20), price numeric(6, 2),
                    owner_id integer, note text);
CREATE TABLE owners (id integer PRIMARY KEY);
INSERT INTO alembic_version (version_num) VALUES ('r1') RETURNING alembic_version.version_num;
COMMIT;
"""
MAPPED = {"items": {"id", "name", "price", "owner_id"}, "owners": {"id"}}


def lint_one(body: str, *, in_transaction: bool = True) -> list[str]:
    """Return the rules flagged in revision r2 running ``body`` after EARLIER."""
    begin, commit = ("BEGIN;\n", "COMMIT;\n") if in_transaction else ("", "")
    sql = f"{EARLIER}{begin}-- Running upgrade r1 -> r2\n{body}\n{commit}"
    [verdict] = migration_lint.lint_sql(sql, mapped=MAPPED, only=["r2"])
    return [finding.rule for finding in verdict.findings]


CASES = [
    (
        "index-without-concurrently",
        "CREATE INDEX ix_items_name ON items (name);",
        "COMMIT;\nCREATE INDEX CONCURRENTLY ix_items_name ON items (name);\nBEGIN;",
    ),
    (
        "concurrently-in-transaction",
        "CREATE INDEX CONCURRENTLY ix_items_name ON items (name);",
        "COMMIT;\nCREATE INDEX CONCURRENTLY ix_items_name ON items (name);\nBEGIN;",
    ),
    (
        "constraint-without-not-valid",
        "ALTER TABLE items ADD CONSTRAINT fk_owner FOREIGN KEY (owner_id) REFERENCES owners (id);",
        "ALTER TABLE items ADD CONSTRAINT fk_owner FOREIGN KEY (owner_id) REFERENCES owners (id) "
        "NOT VALID;\nCOMMIT;\nALTER TABLE items VALIDATE CONSTRAINT fk_owner;\nBEGIN;",
    ),
    (
        "constraint-without-not-valid",
        "ALTER TABLE items ADD CONSTRAINT ck_price CHECK (price > 0);",
        "ALTER TABLE items ADD CONSTRAINT ck_price CHECK (price > 0) NOT VALID;",
    ),
    (
        "constraint-without-not-valid",  # NOT VALID, but validated under the ADD's lock
        "ALTER TABLE items ADD CONSTRAINT ck_price CHECK (price > 0) NOT VALID;\n"
        "ALTER TABLE items VALIDATE CONSTRAINT ck_price;",
        "ALTER TABLE items ADD CONSTRAINT ck_price CHECK (price > 0) NOT VALID;\nCOMMIT;\n"
        "BEGIN;\nALTER TABLE items VALIDATE CONSTRAINT ck_price;",
    ),
    (
        "set-not-null-without-check",
        "ALTER TABLE items ALTER COLUMN name SET NOT NULL;",
        "ALTER TABLE items ADD CONSTRAINT ck_name CHECK (name IS NOT NULL) NOT VALID;\nCOMMIT;\n"
        "BEGIN;\nALTER TABLE items VALIDATE CONSTRAINT ck_name;\n"
        "ALTER TABLE items ALTER COLUMN name SET NOT NULL;",
    ),
    (
        "column-type-rewrite",
        "ALTER TABLE items ALTER COLUMN price TYPE numeric(4, 2);",
        "ALTER TABLE items ALTER COLUMN name TYPE varchar(50);\n"
        "ALTER TABLE items ALTER COLUMN note TYPE varchar;\n"
        "ALTER TABLE items ALTER COLUMN price TYPE numeric(10, 2);",
    ),
    (
        "column-type-rewrite",
        "ALTER TABLE items ALTER COLUMN name TYPE integer USING name::integer;",
        "ALTER TABLE items ALTER COLUMN name TYPE text;",
    ),
    (
        "volatile-default",
        "ALTER TABLE items ADD COLUMN token uuid DEFAULT gen_random_uuid() NOT NULL;",
        "ALTER TABLE items ADD COLUMN seen_at timestamptz DEFAULT now() NOT NULL;",
    ),
    (
        "volatile-default",
        "ALTER TABLE items ADD COLUMN n bigserial;",
        "ALTER TABLE items ADD COLUMN n bigint DEFAULT 0;",
    ),
    (
        "drop-mapped",
        "ALTER TABLE items DROP COLUMN name;",
        "ALTER TABLE items DROP COLUMN note;",  # the models no longer map it
    ),
    (
        "drop-mapped",
        "DROP TABLE owners;",
        "CREATE TABLE scratch (id integer);\nDROP TABLE scratch;",
    ),
    (
        "rename-mapped",
        "ALTER TABLE items RENAME COLUMN name TO title;",
        "ALTER TABLE items RENAME COLUMN note TO remark;",
    ),
    (
        "rename-mapped",
        "ALTER TABLE owners RENAME TO people;",
        "ALTER INDEX ix_old RENAME TO ix_new;",
    ),
    (
        "long-exclusive-lock",
        "ALTER TABLE items ADD CONSTRAINT uq_items_name UNIQUE (name);",
        "COMMIT;\nCREATE UNIQUE INDEX CONCURRENTLY uq_items_name ON items (name);\nBEGIN;\n"
        "ALTER TABLE items ADD CONSTRAINT uq_items_name UNIQUE USING INDEX uq_items_name;",
    ),
    (
        "long-exclusive-lock",
        "LOCK TABLE items IN ACCESS EXCLUSIVE MODE;",
        "LOCK TABLE items IN SHARE UPDATE EXCLUSIVE MODE;",
    ),
    ("long-exclusive-lock", "VACUUM FULL items;", "VACUUM items;"),
    ("long-exclusive-lock", "CLUSTER items USING items_pkey;", "ANALYZE items;"),
    (
        "long-exclusive-lock",
        "ALTER TABLE items SET TABLESPACE pg_default;",
        "ALTER TABLE items SET (fillfactor = 90);",
    ),
    (
        "long-exclusive-lock",
        "ALTER TABLE items ADD COLUMN code text UNIQUE;",
        "ALTER TABLE items ADD COLUMN code text;",
    ),
    (
        "long-exclusive-lock",
        "CREATE MATERIALIZED VIEW totals AS SELECT 1 AS n;\nCOMMIT;\nBEGIN;\n"
        "REFRESH MATERIALIZED VIEW owners_view;",
        "REFRESH MATERIALIZED VIEW CONCURRENTLY owners_view;",
    ),
    (
        "volatile-default",
        "ALTER TABLE items ADD COLUMN n integer GENERATED ALWAYS AS IDENTITY;",
        "ALTER TABLE items ADD COLUMN n integer;",
    ),
    (
        "concurrently-in-transaction",
        "DROP INDEX CONCURRENTLY ix_items_name;",
        "COMMIT;\nDROP INDEX CONCURRENTLY ix_items_name;\nBEGIN;",
    ),
    (
        "column-type-rewrite",
        "ALTER TABLE items ALTER COLUMN owner_id TYPE bigint;",
        "ALTER TABLE items ALTER COLUMN price TYPE numeric;",
    ),
    ("long-exclusive-lock", "REINDEX TABLE items;", "COMMIT;\nREINDEX TABLE CONCURRENTLY items;"),
]


@pytest.mark.parametrize(("rule", "unsafe", "safe"), CASES, ids=[c[0] for c in CASES])
def test_each_rule_flags_the_unsafe_form_and_passes_the_safe_one(
    rule: str, unsafe: str, safe: str
) -> None:
    assert rule in lint_one(unsafe)
    assert lint_one(safe) == []


def test_every_rule_has_a_case() -> None:
    assert {c[0] for c in CASES} | {"unparsable-sql"} == set(migration_lint.RULES)


def test_a_table_created_in_the_same_revision_is_not_flagged() -> None:
    assert (
        lint_one(
            "CREATE TABLE fresh (id integer, name varchar(10), owner_id integer);\n"
            "CREATE INDEX ix_fresh_name ON fresh (name);\n"
            "ALTER TABLE fresh ADD CONSTRAINT fk FOREIGN KEY (owner_id) REFERENCES owners (id);\n"
            "ALTER TABLE fresh ALTER COLUMN name SET NOT NULL;\n"
            "ALTER TABLE fresh ALTER COLUMN name TYPE integer USING 0;\n"
            "ALTER TABLE fresh ADD COLUMN token uuid DEFAULT gen_random_uuid();"
        )
        == []
    )


def test_history_carries_across_revisions() -> None:
    # A renamed table keeps its columns' types; a CHECK validated in an earlier revision
    # lets SET NOT NULL through; a column the history never saw is flagged when retyped.
    assert lint_one(
        "ALTER TABLE items RENAME TO goods;\nALTER TABLE goods ALTER COLUMN name TYPE text;"
    ) == ["rename-mapped"]
    sql = (
        f"{EARLIER}BEGIN;\n-- Running upgrade r1 -> r2\n"
        "ALTER TABLE items ADD CONSTRAINT ck CHECK (note IS NOT NULL) NOT VALID;\nCOMMIT;\n"
        "BEGIN;\n-- Running upgrade r2 -> r3\nALTER TABLE items VALIDATE CONSTRAINT ck;\nCOMMIT;\n"
        "BEGIN;\n-- Running upgrade r3 -> r4\nALTER TABLE items ALTER COLUMN note SET NOT NULL;\n"
        "CREATE TABLE copied AS SELECT * FROM items;\nCREATE INDEX ix_copied ON copied (id);\n"
        "ALTER TABLE items ALTER COLUMN missing TYPE text;\nCOMMIT;\n"
    )
    verdicts = migration_lint.lint_sql(sql, mapped=MAPPED)
    assert [v.revision for v in verdicts] == ["r1", "r2", "r3", "r4"]
    assert [f.rule for f in verdicts[3].findings] == ["column-type-rewrite"]
    assert "unknown to the history" in verdicts[3].findings[0].why


def test_unparsable_sql_is_a_finding() -> None:
    assert lint_one("THIS IS NOT SQL;") == ["unparsable-sql"]


def test_the_findings_say_why_and_what_to_do() -> None:
    sql = (
        f"{EARLIER}BEGIN;\n-- Running upgrade r1 -> r2\nCREATE INDEX ix ON items (name);\nCOMMIT;\n"
    )
    [verdict] = migration_lint.lint_sql(sql, only=["r2"])
    [finding] = verdict.findings
    first, why, instead = finding.lines()
    assert first == "r2 index-without-concurrently: CREATE INDEX ix ON items (name)"
    assert "blocks every write" in why
    assert "CONCURRENTLY" in instead
    assert verdict.summary() == "unsafe: index-without-concurrently"


def test_the_repositorys_history_is_clean() -> None:
    out = ok(run_manage("lintmigrations"))
    assert out.startswith("No unsafe operations (")


# --- the commands, on a copy of the project ----------------------------------------------


def mark_reviewed(project: Path, rev: str, marks: str) -> None:
    [path] = (project / "migrations" / "versions").glob(f"*_{rev}_*.py")
    path.write_text(path.read_text() + f"\n\nreviewed = {marks}\n")


def test_lintmigrations_reports_alembic_and_raw_sql_and_honours_reviews(
    project_copy: Path,
) -> None:
    op_rev = write_revision(
        project_copy,
        "op_index",
        head(),
        "op.create_index('ix_tools_desc', 'tools', ['description'])",
    )
    raw_rev = write_revision(
        project_copy,
        "raw_sql",
        op_rev,
        "op.execute('ALTER TABLE agents RENAME COLUMN name TO title')",
    )

    def lint(*args: str) -> subprocess.CompletedProcess[str]:
        return run_manage("lintmigrations", *args, cwd=project_copy)

    result = lint()
    line = error_line(result)
    assert f"2 unsafe operations in {', '.join(sorted([op_rev, raw_rev]))}" in line
    out = result.stdout
    assert f"{op_rev} index-without-concurrently: CREATE INDEX ix_tools_desc ON tools" in out
    assert f"{raw_rev} rename-mapped: ALTER TABLE agents RENAME COLUMN name TO title" in out
    assert out.count("    why: ") == 2
    assert out.count("    instead: ") == 2
    # Only the revisions asked for.
    assert f"1 unsafe operation in {raw_rev}" in error_line(lint(raw_rev))
    assert op_rev not in lint(raw_rev).stdout

    mark_reviewed(project_copy, op_rev, "{'index-without-concurrently': 'tools has 12 rows'}")
    mark_reviewed(project_copy, raw_rev, "{'rename-mapped': 'no code reads agents.name yet'}")
    out = ok(lint())
    assert "(reviewed: tools has 12 rows)" in out
    assert out.endswith("No unsafe operations (5 revisions checked, 2 reviewed).\n")

    mark_reviewed(project_copy, raw_rev, "{'no-such-rule': 'why'}")  # the last one wins
    assert "marks unknown rule 'no-such-rule' as reviewed" in error_line(lint())
    mark_reviewed(project_copy, raw_rev, "{'rename-mapped': ' '}")
    assert "without a reason" in error_line(lint())
    assert "unknown revision 'nope'" in error_line(lint("nope"))


def test_migrate_refuses_an_unsafe_revision_and_applies_nothing(
    scratch_db: DatabaseURL, project_copy: Path
) -> None:
    ok(manage("migrate", url=scratch_db, cwd=project_copy))
    safe = write_revision(
        project_copy,
        "safe",
        head(),
        "op.add_column('tools', sa.Column('note', sa.Text(), nullable=True))",
    )
    unsafe = write_revision(
        project_copy,
        "unsafe",
        safe,
        "op.alter_column('tools', 'note', nullable=False, existing_type=sa.Text())",
    )
    line = error_line(manage("migrate", url=scratch_db, cwd=project_copy))
    assert f"revision {unsafe} is unsafe: set-not-null-without-check" in line
    assert "nothing was applied" in line
    assert versions(scratch_db) == [head()]  # not even the safe one before it
    columns = fetch(
        scratch_db,
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'tools' "
        "AND column_name = 'note'",
    )
    assert columns == []

    plan = ok(manage("migrate", "--plan", url=scratch_db, cwd=project_copy))
    assert plan.splitlines() == [
        f"Upgrade from {head()} to head:",
        f"  {safe} safe [safe]",
        f"  {unsafe} unsafe [unsafe: set-not-null-without-check]",
        "      set-not-null-without-check: ALTER TABLE tools ALTER COLUMN note SET NOT NULL",
    ]
    pending = manage("migrate", "--check", url=scratch_db, cwd=project_copy)
    assert f"2 revisions pending ({safe}, {unsafe})" in error_line(pending)
    assert versions(scratch_db) == [head()]

    mark_reviewed(project_copy, unsafe, "{'set-not-null-without-check': 'tools is tiny'}")
    assert "[reviewed: set-not-null-without-check]" in ok(
        manage("migrate", "--plan", url=scratch_db, cwd=project_copy)
    )
    out = ok(manage("migrate", url=scratch_db, cwd=project_copy))
    assert f"Applied {unsafe} unsafe" in out
    assert versions(scratch_db) == [unsafe]
    assert ok(manage("migrate", "--check", url=scratch_db, cwd=project_copy)) == (
        "No migrations pending; the database is at head.\n"
    )
    assert ok(manage("migrate", "--plan", url=scratch_db, cwd=project_copy)) == (
        f"Nothing to run; the database is at {unsafe}.\n"
    )


def test_migrate_check_and_plan_on_a_new_database(scratch_db: DatabaseURL) -> None:
    line = error_line(manage("migrate", "--check", url=scratch_db))
    assert f"{len(all_revisions())} revisions pending" in line
    assert "the database is at base" in line
    assert tables(scratch_db) == set()
    plan = ok(manage("migrate", "--plan", url=scratch_db)).splitlines()
    assert plan[0] == "Upgrade from base to head:"
    assert all(line.endswith("[not linted: a new database]") for line in plan[1:])
    assert tables(scratch_db) == set()
    ok(manage("migrate", url=scratch_db))
    assert ok(manage("migrate", "--check", url=scratch_db)) == (
        "No migrations pending; the database is at head.\n"
    )
    down = ok(manage("migrate", "--plan", "-1", url=scratch_db)).splitlines()
    assert down[0].startswith(f"Downgrade from {head()} to ")
    assert down[1].startswith(f"  {head()} ")
    assert versions(scratch_db) == [head()]


SHOP = '''\
"""The shop app's models."""

import uuid

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from project.models import Base


class Owner(Base):
    __tablename__ = "shop_owner"

    name: Mapped[str]


class Item(Base):
    __tablename__ = "shop_item"

    name: Mapped[str]{index}
{owner}'''
OWNER = '    owner_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("shop_owner.id"))\n'


def test_makemigrations_writes_indexes_and_foreign_keys_the_safe_way(
    scratch_db: DatabaseURL, project_copy: Path
) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return manage(*args, url=scratch_db, cwd=project_copy)

    ok(run("startapp", "shop"))
    settings = project_copy / "project" / "settings.py"
    text = settings.read_text()
    settings.write_text(
        text.replace(
            "INSTALLED_APPS: list[str] = [", 'INSTALLED_APPS: list[str] = ["apps.shop", ', 1
        )
    )
    models = project_copy / "apps" / "shop" / "models.py"
    models.write_text(SHOP.format(index="", owner=""))
    ok(run("migrate"))
    ok(run("makemigrations", "-m", "shop"))
    ok(run("migrate"))

    # A new index on an existing column and a new foreign key between existing tables.
    models.write_text(SHOP.format(index=" = mapped_column(index=True)", owner=OWNER))
    versions_dir = project_copy / "migrations" / "versions"
    before = {p.name for p in versions_dir.glob("*.py")}
    out = ok(run("makemigrations", "-m", "safe"))
    assert "The linter reports" not in out
    # The transactional part, then the concurrent part in a revision of its own (a
    # retry of it repeats nothing that was committed).
    wrote = [line.removeprefix("Wrote ") for line in out.splitlines() if line.startswith("Wrote")]
    assert len(wrote) == 2
    first, second = (Path(path).read_text() for path in wrote)
    assert out.splitlines()[1:3] == [
        "  add column shop_item.owner_id",
        "  add foreign key fk_shop_item_owner_id_shop_owner on shop_item -> shop_owner",
    ]
    assert "  add index ix_shop_item_name on shop_item (name)" in out.split(wrote[1])[1]
    assert (
        "  run ALTER TABLE shop_item VALIDATE CONSTRAINT fk_shop_item_owner_id_shop_owner"
        in (out.split(wrote[1])[1])
    )
    assert {p.name for p in versions_dir.glob("*.py")} - before == {Path(w).name for w in wrote}
    assert "postgresql_not_valid=True" in first
    assert "autocommit_block" not in first
    assert "with op.get_context().autocommit_block():" in second
    assert "postgresql_concurrently=True" in second
    assert "if_not_exists=True" in second
    first_rev, second_rev = (Path(w).name.split("_")[2] for w in wrote)
    assert f"down_revision: str | Sequence[str] | None = {first_rev!r}" in second
    lint = ok(run("lintmigrations", first_rev, second_rev))
    assert lint.startswith("No unsafe operations (2 revisions checked")

    out = ok(run("migrate"))
    assert f"Applied {first_rev} safe" in out
    assert f"Applied {second_rev} safe concurrently" in out
    rows = fetch(
        scratch_db,
        "SELECT convalidated FROM pg_constraint WHERE conname = 'fk_shop_item_owner_id_shop_owner'",
    )
    assert rows == [(True,)]
    rows = fetch(
        scratch_db,
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = 'ix_shop_item_name'",
    )
    assert rows == [(True,)]
    ok(run("makemigrations", "--check"))
    # The downgrades drop the index concurrently too, and run.
    assert "postgresql_concurrently=True" in second.split("def downgrade")[1]
    assert "drop_index" not in first.split("def downgrade")[1]
    ok(run("migrate", "-2", "--yes"))
    assert "ix_shop_item_name" not in str(fetch(scratch_db, "SELECT indexname FROM pg_indexes"))
    assert fetch(scratch_db, "SELECT 1 FROM pg_constraint WHERE conname LIKE 'fk_shop_item%'") == []


def test_a_database_with_tables_but_no_version_table_is_still_linted(
    scratch_db: DatabaseURL, project_copy: Path
) -> None:
    # Tables made some other way (a restore without alembic_version, another tool):
    # the history's unsafe operations would run against them, so migrate refuses.
    fetch(scratch_db, "CREATE TABLE legacy (id integer)")
    write_revision(
        project_copy, "legacy_index", head(), "op.create_index('ix_legacy', 'legacy', ['id'])"
    )
    line = error_line(manage("migrate", url=scratch_db, cwd=project_copy))
    assert "is unsafe: index-without-concurrently: CREATE INDEX ix_legacy ON legacy" in line
    assert tables(scratch_db) == {"legacy"}
