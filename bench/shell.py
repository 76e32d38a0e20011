"""Benchmark ``manage.py shell -c 'pass'`` against importing the installed apps' models.

    uv run python -m bench.shell

The baseline is ``python -c "import project.models, <every installed app's models>"``:
what any script that touches the models pays. The shell adds click, the settings, the
namespace and its loop on top (target: at most 1.3x). Each figure is the median wall
time of a fresh process; the two commands alternate, so a busy machine slows both alike.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.common import refuse_production
from project.apps import apps

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15
TARGET = 1.3


def models_modules() -> list[str]:
    """Return ``project.models`` and every installed app's models module."""
    found = ["project.models"]
    found += [f"{c.name}.models" for c in apps.get_app_configs() if c.has_module("models")]
    return found


def run_once(command: Sequence[str], env: dict[str, str]) -> float:
    """Return the wall time of one run of ``command``."""
    started = time.perf_counter()
    subprocess.run(
        command, cwd=ROOT, env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL
    )
    return time.perf_counter() - started


def main() -> None:
    refuse_production()
    env = dict(os.environ)
    modules = models_modules()
    shell = [sys.executable, str(ROOT / "manage.py"), "shell", "-c", "pass"]
    baseline = [sys.executable, "-c", f"import {', '.join(modules)}"]
    for command in (shell, baseline):  # warm the file cache and the bytecode
        run_once(command, env)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(RUNS):
        ours.append(run_once(shell, env))
        theirs.append(run_once(baseline, env))
    shell_time, import_time = statistics.median(ours), statistics.median(theirs)
    ratio = shell_time / import_time
    verdict = "ok" if ratio <= TARGET else "MISSED"
    print(f"baseline: python -c 'import {', '.join(modules)}'")
    print(f"shell -c 'pass'  {shell_time * 1000:7.0f} ms (median of {RUNS})")
    print(f"import models    {import_time * 1000:7.0f} ms (median of {RUNS})")
    print(f"ratio            {ratio:7.2f}x (target <= {TARGET}x) {verdict}")


if __name__ == "__main__":
    main()
