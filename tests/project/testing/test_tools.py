"""System tools a test needs: skipped when missing, failed when CI requires them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from project.testing.tools import REQUIRE_TOOLS, system_tool

MISSING = "pastetrader-no-such-tool"


def test_a_present_tool_is_found() -> None:
    assert system_tool(Path(sys.executable).name, install="-") is not None


def test_a_missing_tool_skips_with_one_line_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(REQUIRE_TOOLS, raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        system_tool(MISSING, install="install it with 'apt-get install -y x'")
    assert str(skipped.value) == (
        f"{MISSING} is not installed; install it with 'apt-get install -y x'"
    )


@pytest.mark.parametrize("value", ["1", "true"])
def test_a_missing_tool_fails_when_required(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(REQUIRE_TOOLS, value)
    with pytest.raises(pytest.fail.Exception, match=f"{MISSING} is not installed.*is set"):
        system_tool(MISSING, install="-")
