"""Shared bits of the benchmarks: a scratch database and timing."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from project import db
from project.db import admin as dbadmin
from project.db.url import DatabaseURL


def refuse_production() -> None:
    """Stop unless this is a development or test setup: benchmarks drop databases."""
    from project.conf import get_settings

    if get_settings().is_production:
        raise SystemExit(
            "Error: benchmarks create and drop databases; not with ENVIRONMENT=production"
        )


@asynccontextmanager
async def bench_database(name: str) -> AsyncIterator[DatabaseURL]:
    """Create a fresh database ``bench_<name>`` on the configured server, point project.db
    at it, and drop it afterwards."""
    url = db.database_url().with_database(f"bench_{name}")
    await dbadmin.drop_database(url)
    await dbadmin.create_database(url)
    await db.use_database(url)
    try:
        yield url
    finally:
        await db.use_database(None)
        await dbadmin.drop_database(url)


async def best_of(repeats: int, run: Callable[[], Awaitable[float]]) -> float:
    """Return the median of ``repeats`` timings (each run returns its own seconds)."""
    return statistics.median([await run() for _ in range(repeats)])


def now() -> float:
    """Return a monotonic time in seconds."""
    return time.perf_counter()


# Runs manage.py in the child and writes its VmHWM at exit. ``ru_maxrss`` from wait4()
# is no good here: on Linux it counts the benchmark's own memory, which the child had
# between fork and exec; VmHWM belongs to the exec'd image alone.
_PEAK_WRAPPER = """
import atexit, runpy, sys
report, script = sys.argv[1], sys.argv[2]
def write_peak():
    with open("/proc/self/status") as status, open(report, "w") as out:
        out.write(next(line for line in status if line.startswith("VmHWM:")).split()[1])
atexit.register(write_peak)
sys.argv = sys.argv[2:]
runpy.run_path(script, run_name="__main__")
"""


def peak_rss_mib(script: str, args: list[str], env: dict[str, str], cwd: str) -> float:
    """Run ``python script args`` and return the child's own peak resident memory in MiB
    (its VmHWM: Linux only)."""
    with tempfile.TemporaryDirectory() as folder:
        report = os.path.join(folder, "peak")
        subprocess.run(
            [sys.executable, "-c", _PEAK_WRAPPER, report, script, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        with open(report) as kib:
            return int(kib.read()) / 1024
