"""The ASGI application, ``project.asgi:app``: what ``runserver`` and uvicorn serve.

``create_app()`` builds a fresh app: the health probes, then each installed app's
``api.py`` ``router`` under ``/api/<label>``, the project's JSON error responses, write
access checked on every request, the ``X-Read-After`` position for read replicas,
and a lifespan that disposes the engine. Importing this
module opens no connection.
"""

from __future__ import annotations

from fastapi import Depends, FastAPI

from project import db
from project.api import errors, health
from project.api.auth import require_write_access
from project.apps import apps
from project.db.replicas import ReadYourWritesMiddleware


def create_app() -> FastAPI:
    """Build the application from the installed apps."""
    app = FastAPI(
        title="PasteTrader",
        lifespan=db.lifespan,
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
            app.include_router(router, prefix=f"/api/{config.label}")
    return app


app = create_app()
