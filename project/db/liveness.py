"""Tell, without a round trip, whether the server has closed an idle asyncpg connection.

A pooled connection waits idle between requests. When the server goes away (a restart,
``pg_terminate_backend``, an idle timeout) it sends its goodbye and closes the socket, but
asyncpg notices only when the event loop next reads that socket: until then
``is_closed()`` is False, and a request handed the connection fails with "connection was
closed in the middle of operation", or with "cannot switch to state 15; another
operation (2) is in progress" once asyncpg has read the goodbye but not yet the end of
the stream.

An idle connection has nothing to read. So, like go-sql-driver/mysql's
``checkConnLiveness``, a non-blocking poll of its socket at checkout tells the truth:
readable means the end of the stream or a message nobody asked for, and either way the
connection must not be handed out. That costs one system call, no round trip.

asyncpg has no public accessor for its transport; ``transport_of`` is the one place that
reaches for it, and ``tests/project/db/test_liveness.py`` fails loudly if that changes.
"""

from __future__ import annotations

import select
from typing import Any

_HAS_POLL = hasattr(select, "poll")  # not on Windows: select() serves there
if _HAS_POLL:
    # POLLRDHUP (Linux) reports a peer that closed its side even before the data is read.
    _READ_EVENTS = select.POLLIN | select.POLLPRI | getattr(select, "POLLRDHUP", 0)
    _TROUBLE = _READ_EVENTS | select.POLLERR | select.POLLHUP | select.POLLNVAL


def transport_of(connection: Any) -> Any:
    """Return the asyncio transport of an asyncpg ``connection`` (None if it has none).

    The adapter over asyncpg's private ``_transport``: asyncpg keeps it there since 0.1
    and offers no public way to it.
    """
    return getattr(connection, "_transport", None)


def socket_fd(connection: Any) -> int | None:
    """Return the file descriptor of ``connection``'s socket, or None if there is none."""
    transport = transport_of(connection)
    if transport is None or transport.is_closing():
        return None
    sock = transport.get_extra_info("socket")
    if sock is None:
        return None
    fd = sock.fileno()
    return fd if isinstance(fd, int) and fd >= 0 else None


def is_dead(connection: Any) -> bool:
    """Return whether the idle asyncpg ``connection`` must not be used: closed, closing,
    or with something unread on its socket (the server's goodbye, or the end of the
    stream)."""
    if connection.is_closed():
        return True
    fd = socket_fd(connection)
    if fd is None:
        return True
    if not _HAS_POLL:  # pragma: no cover - Windows
        readable, _, broken = select.select([fd], [], [fd], 0)
        return bool(readable or broken)
    poller = select.poll()
    poller.register(fd, _READ_EVENTS)
    return any(events & _TROUBLE for _, events in poller.poll(0))
