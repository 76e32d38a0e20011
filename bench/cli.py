"""Benchmark ``manage.py`` start-up and no-op commands against their baselines, in one run.

    uv run python -m bench.cli

- ``manage.py --help`` vs ``python -c "import sqlalchemy.ext.asyncio, alembic.command"``
  (target: at most 0.4x);
- ``manage.py migrate`` at head vs ``alembic upgrade head`` (target: at most 1.1x);
- ``manage.py showmigrations`` vs ``alembic history`` + ``alembic current`` (at most 1.1x);
- ``uv run manage.py --help``, as the README runs it, vs the venv's python running the
  same (at most 2x), with ``PYTHONDONTWRITEBYTECODE=1`` (these machines) and without it
  (a laptop); its warm runs must print nothing on stderr.

Each figure is the median of several runs of a fresh process, on a scratch database.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import refuse_production
from project import db
from project.db import admin as dbadmin

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7
ALEMBIC = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini")]
MANAGE = [sys.executable, str(ROOT / "manage.py")]


def timed(commands: Sequence[Sequence[str]], env: dict[str, str]) -> float:
    """Return the median wall time of running ``commands`` one after another."""
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for command in commands:
            subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def report(name: str, ours: float, baseline: float, target: float) -> None:
    """Print one comparison line."""
    ratio = ours / baseline
    verdict = "ok" if ratio <= target else "MISSED"
    print(
        f"{name:<22} {ours * 1000:7.0f} ms vs {baseline * 1000:7.0f} ms baseline: "
        f"{ratio:.2f}x (target <= {target}x) {verdict}"
    )


def uv_run_overhead(env: dict[str, str]) -> None:
    """Compare ``uv run manage.py --help`` with the venv's python, with and without
    ``PYTHONDONTWRITEBYTECODE``."""
    uv = shutil.which("uv")
    if uv is None:
        print("uv run           skipped: uv is not on PATH")
        return
    for label, value in (("set", "1"), ("unset", None)):
        variant = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
        if value is not None:
            variant["PYTHONDONTWRITEBYTECODE"] = value
        command = [uv, "run", "manage.py", "--help"]
        warm = subprocess.run(command, cwd=ROOT, env=variant, capture_output=True, text=True)
        extra = f" (stderr: {warm.stderr.strip()!r})" if warm.stderr.strip() else ""
        report(
            f"uv run, DONTWRITE {label}",
            timed([command], variant),
            timed([[*MANAGE, "--help"]], variant),
            2.0,
        )
        if extra:
            print(f"  MISSED: a warm uv run printed something{extra}")


def main() -> None:
    refuse_production()
    url = db.database_url().with_database("bench_cli")
    asyncio.run(dbadmin.drop_database(url))
    asyncio.run(dbadmin.create_database(url))
    env = dict(os.environ, DATABASE_URL=url.render(hide_password=False))
    try:
        subprocess.run([*MANAGE, "migrate"], cwd=ROOT, env=env, check=True, capture_output=True)
        imports = [sys.executable, "-c", "import sqlalchemy.ext.asyncio, alembic.command"]
        report("--help", timed([[*MANAGE, "--help"]], env), timed([imports], env), 0.4)
        report(
            "migrate (noop)",
            timed([[*MANAGE, "migrate"]], env),
            timed([[*ALEMBIC, "upgrade", "head"]], env),
            1.1,
        )
        report(
            "showmigrations",
            timed([[*MANAGE, "showmigrations"]], env),
            timed([[*ALEMBIC, "history"], [*ALEMBIC, "current"]], env),
            1.1,
        )
        uv_run_overhead(env)
    finally:
        asyncio.run(dbadmin.drop_database(url))


if __name__ == "__main__":
    main()
