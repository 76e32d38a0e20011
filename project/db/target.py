"""Which database: the one answer every engine, command, message and banner uses.

In order: the URL set by ``project.db.use_database()`` (tests, scripts), else the
settings' ``DATABASE_URL``, else the embedded PostgreSQL (started on first use). Work that
must bypass a pooler (migrations and their lock) takes ``DATABASE_DIRECT_URL`` when it is
set. Nothing here imports SQLAlchemy, so the CLI's no-op paths can ask too.
"""

from __future__ import annotations

from project.conf import Settings, get_settings
from project.db.url import DatabaseURL

_chosen: DatabaseURL | None = None


def choose(url: DatabaseURL | None) -> None:
    """Use ``url`` from now on (None: the settings' again). Only the answer changes here;
    ``project.db.use_database()`` also replaces the engine."""
    global _chosen
    _chosen = url


def chosen() -> DatabaseURL | None:
    """Return the URL set by ``use_database()``, if one is."""
    return _chosen


def configured_url(settings: Settings | None = None) -> DatabaseURL | None:
    """Return the URL in use without starting anything; None means the embedded server."""
    if _chosen is not None:
        return _chosen
    return (settings or get_settings()).database_url


def database_url(settings: Settings | None = None) -> DatabaseURL:
    """Return the URL in use, starting the embedded server if it is the one."""
    url = configured_url(settings)
    if url is not None:
        return url
    from project.db import embedded

    return embedded.ensure_running()


def direct_database_url(settings: Settings | None = None) -> DatabaseURL:
    """Return the URL for work that must bypass a pooler: migrations and their lock."""
    if _chosen is not None:
        return _chosen
    settings = settings or get_settings()
    return settings.database_direct_url or database_url(settings)


def database_label(settings: Settings | None = None) -> str:
    """Return the database in use as text for a message, password hidden, connecting to
    nothing and starting nothing."""
    url = configured_url(settings)
    if url is not None:
        return str(url)
    from project.db import embedded

    running = embedded.running_url(embedded.DATA_DIR)
    if running is not None:
        return f"{running} (embedded)"
    return f"the embedded PostgreSQL in {embedded.DATA_DIR} (not running; starts on first use)"
