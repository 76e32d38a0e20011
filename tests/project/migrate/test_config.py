"""The project's Alembic configuration and its errors in one line."""

from __future__ import annotations

import pytest

from project.exceptions import CommandError
from project.migrate.config import (
    alembic_config,
    compare_server_default,
    context_options,
    render_item,
    translated,
)


def test_alembics_not_up_to_date_error_says_what_to_do() -> None:
    from alembic.util import CommandError as AlembicCommandError

    with pytest.raises(CommandError) as caught, translated():
        raise AlembicCommandError("Target database is not up to date.")
    assert str(caught.value) == (
        "the database is not at the latest migration; run 'manage.py migrate' first"
    )


def test_function_defaults_compare_as_text() -> None:
    def differs(inspected: str | None, rendered: str | None) -> bool | None:
        return compare_server_default(None, None, None, inspected, None, rendered)  # type: ignore[arg-type]

    assert differs("gen_random_uuid()", "gen_random_uuid()") is False
    assert differs("(gen_random_uuid())", "gen_random_uuid()") is False
    assert differs("now()", "'gen_random_uuid()'") is True
    assert differs(None, "now()") is True
    assert differs("'draft'::character varying", "'draft'") is None  # Alembic's own way


def test_enum_columns_render_as_the_strings_they_store() -> None:
    from project.enums import ToolType
    from project.orm.types import ENUM_LENGTH, EnumString

    assert render_item("type", EnumString(ToolType), None) == f"sa.String(length={ENUM_LENGTH})"
    assert render_item("column", EnumString(ToolType), None) is False


def test_a_command_adds_to_envs_context_options() -> None:
    config = alembic_config()
    assert context_options(config)["transaction_per_migration"] is True
    config.attributes["context_options"] = {"on_version_apply": print}
    options = context_options(config)
    assert options["on_version_apply"] is print
    assert options["compare_server_default"] is compare_server_default
