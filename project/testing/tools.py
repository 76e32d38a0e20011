"""System tools that some tests need (``pgbouncer``): found, or the test is skipped.

A fresh machine has only Python, so a test that needs a tool the project cannot install
itself skips with one line saying what to install. CI installs the tools and sets
``PASTETRADER_REQUIRE_TOOLS=1``: there a missing tool fails the test instead, so a
broken install step cannot hide behind a skip.
"""

from __future__ import annotations

import os
import shutil

import pytest

REQUIRE_TOOLS = "PASTETRADER_REQUIRE_TOOLS"
# Debian installs daemons such as pgbouncer in /usr/sbin, often not on a user's PATH.
EXTRA_PATHS = ("/usr/sbin", "/usr/local/sbin")


def system_tool(name: str, *, install: str) -> str:
    """Return the path of executable ``name``; skip the test when it is missing (fail it
    under ``PASTETRADER_REQUIRE_TOOLS``), saying ``install`` (how to get it)."""
    found = shutil.which(name) or shutil.which(name, path=os.pathsep.join(EXTRA_PATHS))
    if found is not None:
        return found
    reason = f"{name} is not installed; {install}"
    if os.environ.get(REQUIRE_TOOLS, "").strip() not in ("", "0"):
        pytest.fail(f"{reason} ({REQUIRE_TOOLS} is set)", pytrace=False)
    pytest.skip(reason)
