"""The shell's names: core objects, SQL helpers, models, factories and apps.

Nothing here connects: ``engine`` is made on first use. The factories are found by
reading the apps' ``factories.py`` (factory_boy imports Faker) and imported on first use.
"""

from __future__ import annotations

import ast
import asyncio
import builtins
import contextlib
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from project.exceptions import CommandError
from project.shell.tracebacks import tb

if TYPE_CHECKING:
    from types import ModuleType

    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

    from project.apps import AppConfig

SQL_NAMES = ("select", "insert", "update", "delete", "func", "text", "and_", "or_")
WIDTH = 100


@dataclass(frozen=True)
class Preloaded:
    """One name the shell defines, and where it came from."""

    name: str
    kind: str  # "model", "factory", "app" or "name"
    origin: str


class Namespace(dict[str, Any]):
    """The shell's globals; a few values (``engine``) are made on first use.

    Module-level code reads names with ``__getitem__`` when its globals are a dict
    subclass, so ``__missing__`` runs the first time a lazy name is read, and never before.
    """

    def __init__(self) -> None:
        super().__init__(__name__="__console__", __doc__=None, __builtins__=builtins)
        self.lazy: dict[str, Callable[[], Any]] = {}

    def __missing__(self, key: str) -> Any:
        make = self.lazy.get(key)
        if make is None:
            raise KeyError(key)
        value = self[key] = make()
        del self.lazy[key]
        return value


@dataclass
class Loaded:
    """What ``build_namespace()`` bound, and the clashes it reported."""

    namespace: Namespace = field(default_factory=Namespace)
    names: list[Preloaded] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Holds the factories' use of the shell's session.
    exits: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def add(self, name: str, value: Any, kind: str, origin: str, *, instead: str = "") -> bool:
        """Bind ``name`` unless it is taken: then the first stays and the clash is reported
        (``instead`` says how to reach the one left out)."""
        taken = next((p for p in self.names if p.name == name), None)
        if taken is not None:
            hint = f"; use {instead}" if instead else ""
            self.warnings.append(
                f"{kind} {name} from {origin} clashes with the {taken.kind} from "
                f"{taken.origin}, which keeps the name{hint}"
            )
            return False
        self.namespace[name] = value
        self.names.append(Preloaded(name, kind, origin))
        return True

    def add_lazy(
        self, name: str, make: Callable[[], Any], kind: str, origin: str, *, instead: str = ""
    ) -> bool:
        """Bind ``name`` to what ``make()`` returns, called on first use; clashes as add()."""
        if not self.add(name, None, kind, origin, instead=instead):
            return False
        del self.namespace[name]
        self.namespace.lazy[name] = make
        return True


class AppNames:
    """One app's models and factories, as attributes: ``tools.Tool``, ``tools.ToolFactory``.

    Factories are imported on first use, like the top-level names.
    """

    def __init__(
        self, label: str, members: dict[str, Any], lazy: dict[str, Callable[[], Any]]
    ) -> None:
        self.__dict__.update(members)
        self._label = label
        self._lazy = lazy

    def __getattr__(self, name: str) -> Any:
        make = self.__dict__.get("_lazy", {}).get(name)
        if make is None:
            raise AttributeError(f"app {self._label!r} has no model or factory {name!r}")
        value = make()
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        return sorted({n for n in self.__dict__ if not n.startswith("_")} | set(self._lazy))

    def __repr__(self) -> str:
        return f"<app {self._label}: {', '.join(self.__dir__())}>"


def _get_engine() -> Any:
    from project import db

    return db.get_engine()


def make_session() -> AsyncSession:
    """Return the shell's session: ``project.db.async_session()``, which joins the
    sandbox's connection inside ``bind_to()`` and otherwise takes the engine (creating it)
    at its first query."""
    from project import db

    return db.async_session()


def factory_names(config: AppConfig) -> list[str] | None:
    """Return the ``*Factory`` classes defined in the app's ``factories.py``, read without
    importing it (factory_boy brings in Faker: tens of milliseconds at every start).

    None when the app has a ``factories`` package instead, or none at all.
    """
    path = config.path / "factories.py"
    if not path.is_file():
        return None
    tree = ast.parse(path.read_bytes(), str(path))
    return [
        node.name
        for node in tree.body
        if isinstance(node, ast.ClassDef) and node.name.endswith("Factory")
    ]


def _is_factory(value: object) -> bool:
    from project.factories import AsyncFactory

    return isinstance(value, type) and issubclass(value, AsyncFactory) and not value._meta.abstract


def build_namespace(session: AsyncSession, *, connection: AsyncConnection | None = None) -> Loaded:
    """Return the shell's names: core objects, SQL helpers, models, factories and apps.

    On a clash the first name stays (core names, then models and factories in
    ``INSTALLED_APPS`` order) and the clash is reported; every app's models and factories
    stay reachable as ``<app label>.<Name>``. ``connection``: the sandbox's.
    """
    import sqlalchemy

    from project import db
    from project.apps import apps
    from project.conf import get_settings
    from project.models import Base

    loaded = Loaded()
    loaded.add("Base", Base, "name", "project.models")
    loaded.add("settings", get_settings(), "name", "project.conf.get_settings()")
    if connection is None:
        loaded.add_lazy("engine", _get_engine, "name", "project.db.engine, created on first use")
        loaded.add("session", session, "name", "AsyncSession, connects on its first query")
    else:
        loaded.add("engine", connection.engine, "name", "project.db.engine, outside the sandbox")
        loaded.add("connection", connection, "name", "AsyncConnection holding the sandbox")
        loaded.add("session", session, "name", "AsyncSession in the sandbox")
    for name in SQL_NAMES:
        loaded.add(name, getattr(sqlalchemy, name), "name", "sqlalchemy")
    loaded.add("asyncio", asyncio, "name", "asyncio")
    loaded.add("tb", tb, "name", "project.shell: print the last error's full traceback")

    apps.load_models()
    configs = apps.get_app_configs()
    order = {config.label: index for index, config in enumerate(configs)}

    def app_of(module: str) -> str | None:
        for config in configs:
            if module == config.name or module.startswith(f"{config.name}."):
                return config.label
        return None

    def sort_key(model: type[Any]) -> tuple[int, str]:
        label = app_of(model.__module__)
        return (order[label] if label is not None else len(order), model.__name__)

    members: dict[str, dict[str, Any]] = {config.label: {} for config in configs}
    lazy: dict[str, dict[str, Callable[[], Any]]] = {config.label: {} for config in configs}
    for model in sorted((mapper.class_ for mapper in Base.registry.mappers), key=sort_key):
        label = app_of(model.__module__)
        instead = f"{label}.{model.__name__}" if label else ""
        loaded.add(model.__name__, model, "model", model.__module__, instead=instead)
        if label is not None:
            members[label][model.__name__] = model

    # Factories write through the shell's session: in this context, which the shell keeps
    # for all its inputs (project.db.use_session imports no factory_boy).
    loaded.exits.enter_context(db.use_session(session))

    def import_factories(config: AppConfig) -> ModuleType:
        module = config.import_module("factories")
        if module is None:  # pragma: no cover - the file was there a moment ago
            raise CommandError(f"{config.name}.factories has gone")
        return module

    for config in configs:
        names = factory_names(config)
        if names is None:  # not a plain module: import it to see
            module = import_factories(config) if config.has_module("factories") else None
            names = [
                name
                for name, value in vars(module or object()).items()
                if _is_factory(value) and app_of(value.__module__) == config.label
            ]
        origin = f"{config.name}.factories, imported on first use"
        for name in names:

            def make(config: AppConfig = config, name: str = name) -> Any:
                return getattr(import_factories(config), name)

            loaded.add_lazy(name, make, "factory", origin, instead=f"{config.label}.{name}")
            lazy[config.label][name] = make
    for config in configs:
        if members[config.label] or lazy[config.label]:
            app = AppNames(config.label, members[config.label], lazy[config.label])
            loaded.add(config.label, app, "app", f"{config.name}: its models and factories")
    return loaded


def _wrap(title: str, names: list[str]) -> str:
    return textwrap.fill(
        ", ".join(names),
        WIDTH,
        initial_indent=f"{title:<11}",
        subsequent_indent=" " * 11,
        break_on_hyphens=False,
    )


def describe_loaded(loaded: Loaded | None, *, verbose: bool) -> str:
    """Return what was loaded: grouped by kind, or (``verbose``) each name and its origin."""
    if loaded is None:
        return "Nothing loaded (--no-imports)."
    names = loaded.names
    if verbose:
        width = max(len(p.name) for p in names)
        return "\n".join(f"  {p.name:<{width}}  {p.kind:<7}  {p.origin}" for p in names)
    lines = []
    for kind, title in (("model", "Models:"), ("factory", "Factories:"), ("app", "Apps:")):
        members = [p.name for p in names if p.kind == kind]
        if members:
            lines.append(_wrap(title, members))
    lines.append(_wrap("Also:", [p.name for p in names if p.kind == "name"]))
    lines.append("(-v lists where each name comes from)")
    return "\n".join(lines)
