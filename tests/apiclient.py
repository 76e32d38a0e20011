"""What the API tests share: a client on a fresh app through httpx's ASGI transport, and
settings changed for one block (production, tokens)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from project import conf


@asynccontextmanager
async def api_client(
    app: FastAPI | None = None, *, client: tuple[str, int] = ("127.0.0.1", 123), **kwargs: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """Yield a client on ``app`` (default: a fresh ``create_app()``) from ``client``'s address.

    App errors become responses, as under a server; the lifespan does not run, so the
    test's engine is not disposed.
    """
    if app is None:
        from project.asgi import create_app

        app = create_app()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=client)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", **kwargs
    ) as http:
        yield http


@contextmanager
def settings(**changes: Any) -> Iterator[conf.Settings]:
    """Run the block with the process's settings changed (``environment="production"``)."""
    before = conf.get_settings()
    changed = dataclasses.replace(before, **changes)
    conf.override_settings(changed)
    try:
        yield changed
    finally:
        conf.override_settings(before)
