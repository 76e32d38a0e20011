"""The apps depend on each other one way: each imports only apps listed before it.

``INSTALLED_APPS`` is then also the dependency order (tools, agents, workflows,
executions), and a cycle, even one hidden in a function body, fails here by name.
"""

from __future__ import annotations

import ast
from pathlib import Path

from project.settings import INSTALLED_APPS

ROOT = Path(__file__).resolve().parents[2]


def imported_apps(app: str) -> dict[str, list[str]]:
    """Return, for each other app that ``app``'s modules import, where they import it."""
    found: dict[str, list[str]] = {}
    package = ROOT / Path(*app.split("."))
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                other = ".".join(name.split(".")[:2])
                if other != app and other in INSTALLED_APPS:
                    place = f"{path.relative_to(ROOT)}:{node.lineno}"
                    found.setdefault(other, []).append(place)
    return found


def test_each_app_imports_only_apps_installed_before_it() -> None:
    backwards = [
        f"{app} imports {other} ({', '.join(places)})"
        for position, app in enumerate(INSTALLED_APPS)
        for other, places in imported_apps(app).items()
        if INSTALLED_APPS.index(other) > position
    ]
    assert backwards == []


def test_the_check_sees_imports_inside_functions() -> None:
    # executions reads workflows in its query functions and at module level alike.
    assert "apps.workflows" in imported_apps("apps.executions")
