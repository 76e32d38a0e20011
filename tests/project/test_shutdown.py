"""A process that imports the models exits without collecting them: manage.py and the
test plugin freeze what is alive at exit, and every atexit handler still runs."""

from __future__ import annotations

import subprocess
import sys

from tests.support import ROOT

# An atexit handler registered first runs last: it sees what the others left.
REPORT_AT_EXIT = (
    "import atexit, gc, sys; "
    "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count()))\n"
)


def _run(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", REPORT_AT_EXIT + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


def _frozen(output: str) -> int:
    return int(output.rsplit("frozen at exit:", 1)[1])


def test_manage_py_freezes_the_heap_at_exit() -> None:
    code = (
        "import apps.tools.models, sys\n"
        "from project.management import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
    )
    output = _run(code)
    assert "Usage:" in output
    assert _frozen(output) > 10_000  # SQLAlchemy and the models, out of the collector's way


def test_without_it_nothing_is_frozen() -> None:
    assert _frozen(_run("import apps.tools.models\n")) == 0


def test_registering_twice_freezes_once() -> None:
    code = (
        "import atexit\n"
        "from project import shutdown\n"
        "before = atexit._ncallbacks()\n"
        "shutdown.skip_final_collections()\n"
        "shutdown.skip_final_collections()\n"
        "print('added:', atexit._ncallbacks() - before)\n"
    )
    output = _run(code)
    assert "added: 1" in output
    assert _frozen(output) > 0
