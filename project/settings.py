"""The project's settings: the installed apps here, the rest from the environment.

Values such as ``DATABASE_URL`` come from the environment and ``.env`` (see
``project.conf``); ``get_settings()`` returns them validated.
"""

from project.conf import Settings, get_settings

INSTALLED_APPS: list[str] = [
    "apps.tools",
    "apps.agents",
    "apps.workflows",
    "apps.executions",
]

__all__ = ["INSTALLED_APPS", "Settings", "get_settings"]
