"""Write a new app's files: ``manage.py startapp``."""

from __future__ import annotations

import keyword
import re
from pathlib import Path

from project.conf import BASE_DIR
from project.exceptions import CommandError

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")

# The examples are commented out line by line, and nothing else in these files is: every
# line that starts with "#" belongs to an example, and removing its first "# " (an
# editor's "toggle comment") brings it to life. Uncommented together, after
# 'manage.py makemigrations' and 'migrate', the model, factory, seeder, command and
# tests work with each other.
_FILES: dict[str, str] = {
    "__init__.py": '"""The {name} app."""\n',
    "models.py": '''"""The {name} app's models (``Base``: UUID key, timestamps, soft delete)."""

from sqlalchemy.orm import Mapped, mapped_column  # noqa: F401

from project.models import Base  # noqa: F401

# class Example(Base):
#     """A named thing of the {name} app."""
#
#     __tablename__ = "{name}_example"
#
#     name: Mapped[str] = mapped_column(unique=True)
''',
    "factories.py": '''"""The {name} app's factories: one ``<Model>Factory`` per model."""

import factory  # noqa: F401

# from apps.{name}.models import Example
from project.factories import AsyncFactory  # noqa: F401

# class ExampleFactory(AsyncFactory[Example]):
#     """An example with a unique name."""
#
#     class Meta:
#         model = Example
#
#     name = factory.Sequence(lambda n: f"example-{{n:05d}}")
''',
    "seeds.py": '''"""The {name} app's seeders, run by ``manage.py seed``."""

# from apps.{name}.factories import ExampleFactory
# from apps.{name}.models import Example
# from project.factories.rows import rows
from project.seeding import SeedContext, seeder  # noqa: F401

# @seeder()
# async def examples(ctx: SeedContext) -> None:
#     """Write ``--count`` examples (demo data; ``reference=True`` data is upserted)."""
#     await ctx.write(Example, rows(ExampleFactory, ctx.count))
''',
    "commands.py": '''"""The {name} app's commands: each click command here joins ``manage.py``."""

import click  # noqa: F401

# @click.command("{name}-stats")
# def stats() -> None:
#     """Say how many examples there are."""
#     # Heavy imports inside the body keep --help fast.
#     from sqlalchemy import func, select
#
#     from apps.{name}.models import Example
#     from project import db
#
#     async def count() -> int | None:
#         async with db.session_scope() as session:
#             return await session.scalar(select(func.count()).select_from(Example))
#
#     click.echo(db.run(count()))  # db.run disposes the engine before its loop ends
''',
    "api.py": '''"""The {name} app's HTTP API: ``router`` is served under ``/api/{name}``.

An endpoint returns rows and names its schema in ``response_model``: FastAPI validates
what an endpoint returns, so building the schema here would validate it twice.
"""

import uuid  # noqa: F401

from fastapi import APIRouter
from pydantic import BaseModel  # noqa: F401

# from apps.{name}.models import Example
from project.api.schemas import After, Limit, Output, Page  # noqa: F401
from project.db import ReadSessionDep, SessionDep  # noqa: F401
from project.orm import repository  # noqa: F401
from project.orm.repository import Repository  # noqa: F401

router = APIRouter(tags=["{name}"])

# class ExampleIn(BaseModel):
#     """A new example."""
#
#     name: str
#
#
# class ExampleOut(Output):
#     """An example as the API shows it."""
#
#     id: uuid.UUID
#     name: str
#
#
# @router.post("", status_code=201, response_model=ExampleOut)
# async def create_example(body: ExampleIn, session: SessionDep) -> Example:
#     """Create an example; 409 when the name is taken."""
#     return await Repository(session, Example).add(Example(name=body.name))
#
#
# @router.get("", response_model=Page[ExampleOut])
# async def list_examples(
#     session: ReadSessionDep, limit: Limit = 50, after: After = None
# ) -> repository.Page[Example]:
#     """List examples, oldest first, a page at a time."""
#     return await Repository(session, Example).list(limit=limit, after=after)
#
#
# @router.get("/{{example_id}}", response_model=ExampleOut)
# async def get_example(example_id: uuid.UUID, session: ReadSessionDep) -> Example:
#     """Return one example; 404 when there is none."""
#     return await Repository(session, Example).get(example_id)
''',
}

_TEST = '''"""Tests of the {name} app."""

import importlib
import random  # noqa: F401

# from sqlalchemy import func, select
# from sqlalchemy.ext.asyncio import AsyncSession
#
# from apps.{name}.factories import ExampleFactory
# from apps.{name}.models import Example
# from apps.{name}.seeds import examples
# from project.seeding import SeedContext


def test_{name}_app_modules_import() -> None:
    for part in ("models", "factories", "seeds", "commands", "api"):
        assert importlib.import_module(f"apps.{name}.{{part}}") is not None


# async def test_example_factory_writes_a_row(db_session: AsyncSession) -> None:
#     example = await ExampleFactory.create()
#     assert example.id is not None
#     assert example.created_at is not None
#     assert await db_session.get(Example, example.id) is example
#
#
# async def test_examples_seeder_writes_count_rows(db_session: AsyncSession) -> None:
#     ctx = SeedContext(session=db_session, count=3, random=random.Random(0))
#     await examples(ctx)
#     count = await db_session.scalar(select(func.count()).select_from(Example))
#     assert count == 3
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
