"""``manage.py runserver`` as a real process, and ``check --deploy``'s token check."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from project.conf import BASE_DIR, VARIABLES
from project.db.url import DatabaseURL
from project.exceptions import CommandError
from project.management.commands.runserver import parse_addrport
from project.testing.standby import free_port
from tests.support import error_line, run_manage

TOKEN = "runserver-test-token-0123456789"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:8000", ("127.0.0.1", 8000)),
        ("9000", ("127.0.0.1", 9000)),
        ("localhost:8001", ("localhost", 8001)),
        ("[::1]:8002", ("::1", 8002)),
        ("0.0.0.0", ("0.0.0.0", 8000)),  # noqa: S104 - parsing only, nothing binds
    ],
)
def test_addrport_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_addrport(text) == expected


@pytest.mark.parametrize("text", ["1.2.3.4:0", "host:70000", "a:b:c", "[::1", "bad host:80", ":"])
def test_bad_addrport_is_one_line(text: str) -> None:
    with pytest.raises(CommandError):
        parse_addrport(text)


def test_runserver_refuses_a_bad_address() -> None:
    result = run_manage("runserver", "nowhere:99999", env={"DATABASE_URL": "postgresql://u@h/d"})
    assert result.returncode == 1
    assert error_line(result) == "Error: 'nowhere:99999' has a bad port; expected 1-65535"


def test_runserver_refuses_production_without_tokens() -> None:
    env = {"ENVIRONMENT": "production", "DATABASE_URL": "postgresql://u:pw@h/d"}
    result = run_manage("runserver", env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert error_line(result).startswith(
        "Error: refusing to serve with ENVIRONMENT=production and no API_TOKENS"
    )


def test_check_deploy_reports_missing_tokens() -> None:
    env = {"ENVIRONMENT": "production", "DATABASE_URL": "postgresql://u:pw@127.0.0.1:1/d"}
    result = run_manage("check", "--deploy", env=env)
    assert result.returncode == 1
    assert (
        "problem: API_TOKENS is unset; with ENVIRONMENT=production every write would be refused"
        in result.stderr.splitlines()
    )


async def test_runserver_serves_the_app(transactional_db: AsyncEngine, db_url: DatabaseURL) -> None:
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    environ.update(
        DATABASE_URL=db_url.render(hide_password=False),
        ENVIRONMENT="production",
        API_TOKENS=TOKEN,
        PYTHONUNBUFFERED="1",
    )
    # Popen returns at once; the server runs beside the test's loop.
    server = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}"],
        cwd=BASE_DIR,
        env=environ,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    live = await client.get("/health/live")
                    break
                except httpx.TransportError:
                    assert server.poll() is None, "runserver exited early"
                    assert time.monotonic() < deadline, "runserver did not start in 30 s"
                    await asyncio.sleep(0.1)
            assert live.status_code == 200
            ready = await client.get("/health/ready")
            assert ready.status_code == 200, ready.text
            tool = {"name": "served", "tool_type": "notification"}
            refused = await client.post("/api/tools", json=tool)
            assert refused.status_code == 401
            created = await client.post(
                "/api/tools", json=tool, headers={"Authorization": f"Bearer {TOKEN}"}
            )
            assert created.status_code == 201, created.text
            read = await client.get(f"/api/tools/{created.json()['id']}")
            assert read.json()["name"] == "served"
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert f"Serving PasteTrader at {base}/ (API docs at /docs)" in output
    assert "ENVIRONMENT=production: no reloading" in output
    assert TOKEN not in output
    assert "Traceback" not in output
