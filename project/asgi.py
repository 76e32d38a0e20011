"""The ASGI application, ``project.asgi:app``: what ``runserver`` and uvicorn serve.

``create_app()`` builds a fresh app: the health probes, then each installed app's
``api.py`` ``router`` under ``/api/<label>`` (or the module's ``prefix``, for a route that
nests under another app's URLs), the project's JSON error responses, write
access checked on every request, the ``X-Read-After`` position for read replicas,
and a lifespan that tunes the garbage collector for serving and disposes the engine.
Importing this module opens no connection.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from project import db
from project.api import errors, health
from project.api.auth import require_write_access
from project.apps import apps
from project.db.replicas import ReadYourWritesMiddleware

#: The young generation's threshold while serving (CPython's default is 700). A request
#: allocates a few thousand objects that die by reference counting when it ends; at 700
#: each request ran several collections over its own live objects and promoted them.
YOUNG_THRESHOLD = 10_000


@functools.cache  # once per process
def tune_gc_for_serving() -> None:
    """Freeze what startup built, so no collection scans it again, and collect the young
    generation less often than every 700 allocations. Once per process."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Serve with the collector tuned (``tune_gc_for_serving``); dispose the engine after."""
    tune_gc_for_serving()
    async with db.lifespan(app):
        yield


def create_app() -> FastAPI:
    """Build the application from the installed apps."""
    app = FastAPI(
        title="PasteTrader",
        lifespan=lifespan,
        dependencies=[Depends(require_write_access)],
    )
    errors.install(app)
    # Read-your-writes across requests: X-Read-After in and out, only with replicas.
    app.add_middleware(ReadYourWritesMiddleware, enabled=lambda: bool(db.replica_urls()))
    apps.load_models()  # every mapper is known before the first query configures them
    app.include_router(health.router)
    for config in apps.get_app_configs():
        module = config.import_module("api")
        router = getattr(module, "router", None)
        if router is not None:
            prefix = getattr(module, "prefix", f"/api/{config.label}")
            app.include_router(router, prefix=prefix)
    return app


app = create_app()
