"""The embedded PostgreSQL used when ``DATABASE_URL`` is unset.

The server comes from the ``pgserver`` wheel (PostgreSQL 16 binaries), keeps its data in
``.data/postgres`` under the project, listens on a Unix socket only, and keeps running
between commands so that each command pays for its start once, not every time.
``manage.py dbserver stop`` stops it.
"""

from __future__ import annotations

import os
import subprocess
import warnings
from pathlib import Path

from project.conf import BASE_DIR
from project.db.url import DatabaseURL
from project.exceptions import DatabaseUnavailable

DATA_DIR = BASE_DIR / ".data" / "postgres"
DEFAULT_DATABASE = "pastetrader"


def running_url(data_dir: Path = DATA_DIR) -> DatabaseURL | None:
    """Return the URL of a server already running on ``data_dir``, read from postmaster.pid."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None
    try:
        pid = int(lines[0])
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return None
    except PermissionError:  # alive, owned by the server's own user
        pass
    port, socket_dir = lines[3].strip(), lines[4].strip()
    return DatabaseURL(
        database=DEFAULT_DATABASE,
        username="postgres",
        query=(("host", socket_dir), ("port", port)),
    )


def ensure_running(data_dir: Path = DATA_DIR) -> DatabaseURL:
    """Start the embedded server on ``data_dir`` unless it runs; return its URL."""
    url = running_url(data_dir)
    if url is not None:
        return url
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
            from pgserver.postgres_server import get_server

        get_server(data_dir, cleanup_mode=None)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatabaseUnavailable(
            f"the embedded PostgreSQL in {data_dir} did not start ({exc}); "
            f"see {data_dir / 'log'}, or set DATABASE_URL"
        ) from None
    url = running_url(data_dir)
    if url is None:
        raise DatabaseUnavailable(f"the embedded PostgreSQL in {data_dir} did not become ready")
    _ensure_database(url)
    return url


def bin_dir() -> Path:
    """Return the directory of the embedded PostgreSQL's programs (psql, initdb, ...).

    The one place that reads it from ``pgserver._commands``: pgserver has no public name
    for it. ``tests/project/db/test_embedded.py`` fails if it moves.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


def _ensure_database(url: DatabaseURL) -> None:
    """Create the default database on a freshly started server if it is missing.

    psql is the client here (this runs before any event loop); it quotes the name itself,
    as a literal (``:'name'``) and, through ``format('%I')``, as an identifier.
    """
    script = (
        "SELECT format('CREATE DATABASE %I', :'name') "
        "WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'name') \\gexec\n"
    )
    psql = [str(bin_dir() / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    psql += ["-v", f"name={DEFAULT_DATABASE}"]
    env = {**os.environ, **url.with_database("postgres").libpq_env()}
    subprocess.run(psql, input=script, env=env, capture_output=True, text=True, check=True)


def stop(data_dir: Path = DATA_DIR) -> bool:
    """Stop the embedded server; return whether one was running."""
    if running_url(data_dir) is None:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        # Public: pgserver exports one function per program, made at import (no stubs).
        from pgserver import pg_ctl  # type: ignore[attr-defined]

    user = "pgserver" if os.geteuid() == 0 else None
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user)
    return True
