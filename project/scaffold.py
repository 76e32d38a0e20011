"""Write a new app's files: ``manage.py startapp``."""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from project.conf import BASE_DIR
from project.exceptions import CommandError

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")

_FILES: dict[str, str] = {
    "__init__.py": '"""The {name} app."""\n',
    "models.py": '''"""The {name} app's models (``Base``: UUID key, timestamps, soft delete)."""

from sqlalchemy.orm import Mapped, mapped_column  # noqa: F401

from project.models import Base  # noqa: F401

# class Example(Base):
#     __tablename__ = "{name}_example"
#
#     name: Mapped[str] = mapped_column(unique=True)
''',
    "factories.py": '''"""The {name} app's factories: one ``<Model>Factory`` per model."""
''',
    "seeds.py": '''"""The {name} app's seeders, run by ``manage.py seed``."""
''',
    "commands.py": '''"""The {name} app's commands: each click command here joins ``manage.py``."""

import click  # noqa: F401

# @click.command("{name}-stats")
# def stats() -> None:
#     """Say how many rows the app has."""
#     from project import db  # heavy imports inside the body keep --help fast
#
#     click.echo(db.run(count_rows()))  # db.run disposes the engine before its loop ends
''',
}

_TEST = '''"""Tests of the {name} app."""

import importlib


def test_{name}_app_modules_import() -> None:
    for part in ("models", "factories", "seeds", "commands"):
        assert importlib.import_module(f"apps.{name}.{{part}}") is not None
'''


def startapp(name: str, base_dir: Path = BASE_DIR) -> list[Path]:
    """Write ``apps/<name>/`` and its test; return the files written."""
    if not _NAME.match(name) or keyword.iskeyword(name) or len(name) > 40:
        raise CommandError(
            f"invalid app name {name!r}: use lowercase letters, digits and underscores, "
            "starting with a letter"
        )
    app_dir = base_dir / "apps" / name
    test_dir = base_dir / "tests" / "apps" / name
    files = {
        app_dir / filename: template.format(name=name) for filename, template in _FILES.items()
    }
    files[test_dir / f"test_{name}.py"] = _TEST.format(name=name)
    for package in (base_dir / "tests" / "apps", test_dir):  # the test tree's packages
        if not (package / "__init__.py").exists():
            files[package / "__init__.py"] = ""
    # Check everything before writing anything: a refused scaffold leaves no trace.
    taken = [path for path in (app_dir, *files) if path.exists()]
    if taken:
        raise CommandError(f"{taken[0]} already exists")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)
