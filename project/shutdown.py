"""A quick interpreter exit for processes that import SQLAlchemy and the models.

At exit, CPython runs full garbage collections over every object still alive while it
tears the modules down: with SQLAlchemy, the models and factory_boy loaded that is some
100,000 objects, and 100-150 ms on these machines for each manage.py command and each
xdist worker. None of those objects needs collecting just before the process ends, so
they are frozen out of the collector's reach. Finalizers, atexit handlers and stream
flushing all still run.
"""

from __future__ import annotations

import atexit
import gc

_registered = False


def skip_final_collections() -> None:
    """Freeze the objects alive at exit, so that exiting skips collecting them."""
    global _registered
    if not _registered:
        atexit.register(gc.freeze)
        _registered = True
