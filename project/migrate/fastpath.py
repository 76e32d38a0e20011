"""Tell whether the database is already at the single head, without SQLAlchemy or Alembic.

``manage.py migrate`` at head asks this first, so a no-op costs a fraction of ``alembic
upgrade head`` (``bench.cli`` and ``bench.migrate`` measure it). It is the one place that
reads the revision graph outside Alembic's ScriptDirectory: the revision ids come from the
files' literals (``ast``, no import of the files) and the database's from the version
table (asyncpg). Anything it cannot read plainly answers None, and the caller asks
Alembic: this check may say "don't know", never the wrong thing.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from project.conf import BASE_DIR
from project.db.target import direct_database_url

if TYPE_CHECKING:
    from project.db.url import DatabaseURL


def static_heads() -> set[str] | None:
    """Return the script's heads read from the revision files' literals (no import of
    Alembic or the files), or None when a file is not plain enough to read that way."""
    import ast

    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (BASE_DIR / "migrations" / "versions").glob("*.py"):
        values: dict[str, Any] = {}
        for node in ast.parse(path.read_bytes()).body:
            target: ast.expr | None = None
            if isinstance(node, ast.AnnAssign):
                target = node.target
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
            value = getattr(node, "value", None)
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                try:
                    values[target.id] = ast.literal_eval(value) if value is not None else None
                except ValueError:
                    return None
        revision, down = values.get("revision"), values.get("down_revision")
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        parents.update([down] if isinstance(down, str) else down or ())
    return revisions - parents


async def _versions(url: DatabaseURL) -> set[str]:
    from project.db import admin as dbadmin

    conn = await dbadmin.connect(url)
    try:
        exists = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
        if not exists:
            return set()
        return {row[0] for row in await conn.fetch("SELECT version_num FROM alembic_version")}
    finally:
        await conn.close()


def at_head_quickly() -> bool | None:
    """Tell whether the database is at the single head, reading the revision files and
    the version table directly. None when it cannot tell: ask Alembic."""
    heads = static_heads()
    if heads is None or len(heads) != 1:
        return None
    try:
        versions = asyncio.run(_versions(direct_database_url()))
    except Exception:  # anything unusual: the full path reports it properly
        return None
    return versions == heads
