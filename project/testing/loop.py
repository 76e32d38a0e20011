"""Run ``async def`` tests and fixtures on one event loop per test process.

One loop for the whole session lets session-scoped async fixtures (an engine, a pool)
serve every test: an AsyncEngine must never cross event loops.

Every coroutine runs in a ``contextvars.Context`` the caller chooses, never in a fresh
copy per call (as ``asyncio.run`` and a bare ``run_until_complete`` would): what an async
fixture sets (``bind_to()``, ``use_session()``) is seen by the fixtures after it and by the
test, and its teardown resets it in the context that set it. The session's context holds
what session-wide work and wider-scoped fixtures set; the plugin gives each test a copy of
it, taken when the test's first function-scoped coroutine runs, so that a test and its
fixtures share one context and nothing they set reaches the next test.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Coroutine, Generator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import asyncio

T = TypeVar("T")
_loop: asyncio.AbstractEventLoop | None = None
_context: contextvars.Context | None = None


def get_loop() -> asyncio.AbstractEventLoop:
    """Return the session's loop, creating it on first use."""
    global _loop
    if _loop is None or _loop.is_closed():
        # Imported here: the xdist controller, which runs no test, never needs asyncio.
        import asyncio

        _loop = asyncio.new_event_loop()
    return _loop


def session_context() -> contextvars.Context:
    """Return the context of the session's own work and of its wider-scoped fixtures."""
    global _context
    if _context is None:
        _context = contextvars.copy_context()
    return _context


def run(coroutine: Coroutine[Any, Any, T], context: contextvars.Context | None = None) -> T:
    """Run ``coroutine`` to completion on the session's loop, in ``context`` (by default
    the session's)."""
    loop = get_loop()
    task = loop.create_task(coroutine, context=context or session_context())
    return loop.run_until_complete(task)


def close() -> None:
    """Close the session's loop and forget its context."""
    global _loop, _context
    if _loop is not None and not _loop.is_closed():
        _loop.run_until_complete(_loop.shutdown_asyncgens())
        _loop.close()
    _loop = None
    _context = None


def is_async(func: Callable[..., Any]) -> bool:
    """Return whether ``func`` is a coroutine or async generator function."""
    return inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func)


def synchronize(
    func: Callable[..., Any], context: Callable[[], contextvars.Context]
) -> Callable[..., Any]:
    """Wrap an async function (a test, or a fixture, yielding or not) so that pytest can
    call it synchronously; each of its steps runs in the context ``context()`` returns."""
    if inspect.isasyncgenfunction(func):

        @functools.wraps(func)
        def generator(*args: Any, **kwargs: Any) -> Generator[Any, None, None]:
            agen = func(*args, **kwargs)
            where = context()  # the teardown resets what the setup set: same context
            yield run(agen.__anext__(), where)
            try:
                run(agen.__anext__(), where)
            except StopAsyncIteration:
                return
            raise RuntimeError(f"async fixture {func.__name__} yielded more than once")

        return generator

    @functools.wraps(func)
    def call(*args: Any, **kwargs: Any) -> Any:
        return run(func(*args, **kwargs), context())

    return call
