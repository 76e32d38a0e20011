"""What autogenerate found, one line per change."""

from __future__ import annotations

from typing import Any

from project.migrate.describe import describe_diff, describe_operations


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
    assert describe_operations(upgrade) == [
        "create table notes",
        "add column notes.title",
        "alter column notes.body (type VARCHAR(20) -> TEXT, NOT NULL)",
        "drop column notes.old",
        "add unique index ix_notes_title on notes (title)",
        "create unique constraint uq_notes_body on notes",
        "drop index ix_gone on gone",
        "drop table archive.gone",
    ]


def test_describe_diff_gives_the_kind_and_the_named_objects() -> None:
    import sqlalchemy as sa

    table = sa.Table("notes", sa.MetaData(), sa.Column("id", sa.Integer))
    index = sa.Index("ix_notes_id", table.c.id)
    assert describe_diff(("add_table", table)) == "add_table notes"
    assert describe_diff(("add_index", index)) == "add_index ix_notes_id"
    assert describe_diff(("add_column", None, "notes", sa.Column("title", sa.Text))) == (
        "add_column title"
    )
    grouped: list[tuple[Any, ...]] = [
        ("modify_nullable", None, "notes", "id", {}, True, False),
        ("modify_type", None, "notes", "id", {}, sa.Integer(), sa.BigInteger()),
    ]
    assert describe_diff(grouped) == "modify_nullable; modify_type"
