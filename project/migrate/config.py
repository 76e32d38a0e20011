"""Configure Alembic for the project: its Config and ScriptDirectory, the options
``migrations/env.py`` passes to ``context.configure``, the models it compares with, and
Alembic's errors turned into the project's one-line errors.

The ScriptDirectory returned here is the one source of the revision graph; only the
no-op check in ``project.migrate.fastpath`` reads it another way (the revision files'
literals), and says "don't know" whenever that is not plain.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from project.conf import BASE_DIR
from project.exceptions import CommandError, first_line

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import Column, MetaData
    from sqlalchemy.ext.asyncio import AsyncEngine

    from project.db.url import DatabaseURL

NOT_AT_HEAD = "the database is not at the latest migration"
MIGRATE_FIRST = "run 'manage.py migrate' first"
_CALL = re.compile(r"\w+\s*\(")


def alembic_config(output: io.StringIO | None = None) -> Config:
    """Return the project's Alembic configuration (``alembic.ini``), paths made absolute.

    Alembic's own printing goes to ``output`` (discarded by default): commands report
    through their return values instead.
    """
    from alembic.config import Config

    buffer = output or io.StringIO()
    config = Config(str(BASE_DIR / "alembic.ini"), stdout=buffer, output_buffer=buffer)
    config.set_main_option("script_location", str(BASE_DIR / "migrations"))
    return config


def script_directory(config: Config | None = None) -> ScriptDirectory:
    """Return the migrations' ScriptDirectory."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config or alembic_config())


def _normalize_default(text: str) -> str:
    return re.sub(r"[\s()]|::[\w ]+", "", text).lower()


def compare_server_default(
    context: MigrationContext,
    inspected_column: Column[Any],
    metadata_column: Column[Any],
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Compare function defaults as text; Alembic would evaluate them, and volatile ones
    such as ``gen_random_uuid()`` never compare equal. Literals use Alembic's comparison."""
    texts = [t for t in (inspected_default, rendered_metadata_default) if t]
    if not any(_CALL.search(t) for t in texts):
        return None
    return _normalize_default(inspected_default or "") != _normalize_default(
        (rendered_metadata_default or "").strip("'\"")
    )


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render project column types as the plain SQL types they store (no import of the
    project in revision files), and leave everything else to Alembic."""
    from project.orm.types import ENUM_LENGTH, EnumString

    if type_ == "type" and isinstance(obj, EnumString):
        return f"sa.String(length={ENUM_LENGTH})"
    return False


def context_options(config: Config) -> dict[str, Any]:
    """Return the options ``env.py`` passes to ``context.configure``, with any a command
    put in ``config.attributes["context_options"]``."""
    options: dict[str, Any] = {
        "compare_type": True,
        "compare_server_default": compare_server_default,
        "render_item": render_item,
        # A failing revision rolls back alone; the version table always tells the truth.
        "transaction_per_migration": True,
    }
    options.update(config.attributes.get("context_options", {}))
    return options


def target_metadata() -> MetaData:
    """Return ``Base.metadata`` with every installed app's models loaded."""
    from project.apps import apps
    from project.models import Base

    apps.load_models()
    return Base.metadata


def create_migration_engine(url: DatabaseURL | None = None) -> AsyncEngine:
    """Create a one-shot engine on ``url`` (default: the direct database URL)."""
    from project.db import create_engine, direct_database_url

    return create_engine(url or direct_database_url(), pooled=False)


@contextmanager
def translated() -> Iterator[None]:
    """Turn an Alembic error raised in the block into a one-line CommandError."""
    from alembic.util import CommandError as AlembicCommandError

    try:
        yield
    except AlembicCommandError as exc:
        message = first_line(str(exc))
        if message == "Target database is not up to date.":  # autogenerate's own check
            message = f"{NOT_AT_HEAD}; {MIGRATE_FIRST}"
        raise CommandError(message) from exc
