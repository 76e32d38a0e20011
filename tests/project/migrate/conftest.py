"""The migration tests' one local fixture: a copy of the project to add revisions to."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import copy_project


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    """Copy the project (no .venv, .data or .git) into ``tmp_path``."""
    return copy_project(tmp_path / "project_copy")
