"""The database: ``engine``, ``async_session``, ``SessionDep``, ``get_db()``, ``session_scope()``.

The names the contract gives ``project.db`` are made in ``project.db.session`` and loaded
from there on first use, so importing this package (or ``project.db.url``, which settings
use) costs nothing and connects nowhere. The package's other modules:

- ``url``: ``DatabaseURL``, parsed, printed without the password, converted per client;
- ``target``: which database is in use, the one answer to that question;
- ``session``: the engine, the sessions, ``bind_to()``/``use_session()``, read sessions;
- ``replicas``: which replica serves a read, and read-your-writes;
- ``liveness``: whether an idle pooled connection is dead, without a round trip;
- ``admin``: create, drop, empty and inspect databases on a maintenance connection;
- ``embedded``: the PostgreSQL started when ``DATABASE_URL`` is unset;
- ``concurrency``: row locks, optimistic versions, retried transactions;
- ``inspection``: ``showdb``, ``showtable`` and ``showmodel``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from project.db.session import (
        PING_AFTER_IDLE_SECONDS,
        ReadSessionDep,
        SessionDep,
        async_session,
        bind_to,
        create_engine,
        create_read_engine,
        current_session,
        dispose,
        engine,
        get_db,
        get_engine,
        get_read_db,
        get_router,
        lifespan,
        replica_urls,
        run,
        session_scope,
        set_database_url,
        use_database,
        use_replicas,
        use_session,
    )
    from project.db.target import (
        configured_url,
        database_label,
        database_url,
        direct_database_url,
    )

__all__ = [
    "PING_AFTER_IDLE_SECONDS",
    "ReadSessionDep",
    "SessionDep",
    "async_session",
    "bind_to",
    "configured_url",
    "create_engine",
    "create_read_engine",
    "current_session",
    "database_label",
    "database_url",
    "direct_database_url",
    "dispose",
    "engine",
    "get_db",
    "get_engine",
    "get_read_db",
    "get_router",
    "lifespan",
    "replica_urls",
    "run",
    "session_scope",
    "set_database_url",
    "use_database",
    "use_replicas",
    "use_session",
]


_TARGET = {
    "configured_url",
    "database_label",
    "database_url",
    "direct_database_url",
}


def __getattr__(name: str) -> Any:
    # ``from project.db import engine`` loads the session module then, not at import.
    if name in _TARGET:
        return getattr(import_module("project.db.target"), name)
    if name in __all__:
        return getattr(import_module("project.db.session"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
