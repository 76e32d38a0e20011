"""Run ``async def`` tests and fixtures on one event loop per test process.

One loop for the whole session lets session-scoped async fixtures (an engine, a pool)
serve every test: an AsyncEngine must never cross event loops.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")
_loop: asyncio.AbstractEventLoop | None = None


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the session's loop, creating it on first use."""
    global _loop
    if _loop is None or _loop.is_closed():
        # Imported here: the xdist controller, which runs no test, never needs asyncio.
        import asyncio

        _loop = asyncio.new_event_loop()
    return _loop


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion on the session's loop."""
    return get_loop().run_until_complete(coroutine)


def close() -> None:
    """Close the session's loop."""
    global _loop
    if _loop is not None and not _loop.is_closed():
        _loop.run_until_complete(_loop.shutdown_asyncgens())
        _loop.close()
    _loop = None


def is_async(func: Callable[..., Any]) -> bool:
    """Return whether ``func`` is a coroutine or async generator function."""
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


def synchronize(func: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an async fixture function so that pytest can call it synchronously."""
    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        def generator(*args: Any, **kwargs: Any) -> Generator[Any, None, None]:
            agen = func(*args, **kwargs)
            yield run(agen.__anext__())
            try:
                run(agen.__anext__())
            except StopAsyncIteration:
                return
            raise RuntimeError(f"async fixture {func.__name__} yielded more than once")

        return generator

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        return run(func(*args, **kwargs))

    return call
