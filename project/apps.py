"""The app registry: which packages are installed, and importing their models and modules.

Loading is idempotent and happens in two phases, like Django's: import every app package,
then every app's ``models`` module. Code that reads ``Base.metadata`` (autogenerate,
``check``, the test plugin) calls ``load_models()`` first, so no model is ever missed.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from project.exceptions import ImproperlyConfigured, summary


@dataclass(frozen=True)
class AppConfig:
    """One installed app."""

    name: str
    module: ModuleType

    @property
    def label(self) -> str:
        """Return the app's short name, the last part of its dotted name."""
        return self.name.rpartition(".")[2]

    @property
    def path(self) -> Path:
        """Return the app package's folder."""
        return Path(next(iter(self.module.__path__)))

    def has_module(self, name: str) -> bool:
        """Return whether the app has a submodule ``name``, without importing it."""
        return (self.path / f"{name}.py").is_file() or (self.path / name / "__init__.py").is_file()

    def import_module(self, name: str) -> ModuleType | None:
        """Import the app's submodule ``name`` if it exists."""
        if not self.has_module(name):
            return None
        dotted = f"{self.name}.{name}"
        try:
            return importlib.import_module(dotted)
        except Exception as exc:
            raise ImproperlyConfigured(f"{dotted} failed to import: {summary(exc)}") from exc


def _suggest(name: str) -> str:
    parent, _, _ = name.rpartition(".")
    candidates: list[str] = []
    try:
        spec = importlib.util.find_spec(parent) if parent else None
    except (ImportError, ValueError):  # the parent's own parent is missing too
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            candidates += [
                f"{parent}.{p.name}"
                for p in Path(location).iterdir()
                if (p / "__init__.py").exists()
            ]
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _import_app(name: str) -> ModuleType:
    try:
        found = importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ImproperlyConfigured(
            f"INSTALLED_APPS names {name!r}, which does not exist{_suggest(name)}"
        )
    try:
        return importlib.import_module(name)
    except Exception as exc:
        raise ImproperlyConfigured(f"app {name!r} failed to import: {summary(exc)}") from exc


class Apps:
    """The registry of installed apps."""

    def __init__(self, installed: list[str] | None = None) -> None:
        self._installed = installed
        self._configs: dict[str, AppConfig] | None = None
        self._models_loaded = False

    @property
    def installed(self) -> list[str]:
        """Return the dotted names of the installed apps."""
        if self._installed is None:
            from project.settings import INSTALLED_APPS

            return list(INSTALLED_APPS)
        return list(self._installed)

    def get_app_configs(self) -> list[AppConfig]:
        """Import the app packages (phase one) and return their configs in order."""
        if self._configs is None:
            configs: dict[str, AppConfig] = {}
            for name in self.installed:
                config = AppConfig(name, _import_app(name))
                if config.label in configs:
                    raise ImproperlyConfigured(
                        f"INSTALLED_APPS has two apps labelled {config.label!r}: "
                        f"{configs[config.label].name!r} and {name!r}"
                    )
                configs[config.label] = config
            self._configs = configs
        return list(self._configs.values())

    def get_app_config(self, label: str) -> AppConfig:
        """Return the installed app with ``label`` (or dotted name)."""
        configs = {c.label: c for c in self.get_app_configs()}
        configs.update({c.name: c for c in configs.values()})
        if label in configs:
            return configs[label]
        close = difflib.get_close_matches(label, list(configs), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ImproperlyConfigured(f"no installed app is named {label!r}{hint}")

    def load_models(self) -> None:
        """Import every installed app's models (phase two); safe to call again."""
        if self._models_loaded:
            return
        for config in self.get_app_configs():
            config.import_module("models")
        self._models_loaded = True

    def reset(self, installed: list[str] | None = None) -> None:
        """Forget what was loaded, optionally with another list of apps (for tests)."""
        self.__init__(installed)  # type: ignore[misc]


apps = Apps()
