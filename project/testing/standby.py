"""Start a throwaway primary and a streaming hot standby from the embedded server's binaries.

For the replica tests and ``bench.replicas``: ``initdb``, ``wal_level = replica``, a
``replication`` line in ``pg_hba.conf``, ``pg_basebackup -R``, start; about 2 s. Both
listen on free loopback ports, keep their data in a temporary directory, and run as an
unprivileged user when this process is root (PostgreSQL refuses root). Every wait is
bounded.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from project.db.embedded import bin_dir
from project.db.url import DatabaseURL

DATABASE = "app"
TIMEOUT = 60.0


def server_user() -> str | None:
    """Return the user the servers run as: None unless this process is root, else the
    embedded server's ``pgserver`` (made the way pgserver makes it, if need be)."""
    if os.geteuid() != 0:
        return None
    for name in ("pgserver", "postgres"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    subprocess.run(["useradd", "-s", "/bin/bash", "pgserver"], check=True, capture_output=True)
    return "pgserver"


def free_port() -> int:
    """Return a loopback TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """One PostgreSQL server of the pair."""

    data: Path
    port: int
    user: str | None

    def url(self, database: str = DATABASE) -> DatabaseURL:
        """Return the server's URL (TCP on 127.0.0.1, user postgres, no password)."""
        return DatabaseURL(database=database, host="127.0.0.1", port=self.port, username="postgres")

    def run(self, program: str, *args: str, timeout: float = TIMEOUT) -> None:
        """Run one of the server programs as the server's user; raise with its log if it fails."""
        log = self.data.parent / f"{program}.out"
        with log.open("ab") as out:
            # Files, not pipes: pg_ctl's server inherits them, and a pipe would never close.
            result = subprocess.run(
                [str(bin_dir() / program), *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                user=self.user,
                cwd=self.data.parent,
                timeout=timeout,
                check=False,
            )
        if result.returncode != 0:
            raise RuntimeError(f"{program} failed ({result.returncode}): {log.read_text()[-2000:]}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1"
        log = str(self.data.parent / f"{self.data.name}.log")
        self.run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "-t", "60",
                 "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: fast, immediate) and wait until it has exited."""
        self.run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    @property
    def running(self) -> bool:
        """Tell whether the server's postmaster is running."""
        return (self.data / "postmaster.pid").exists()

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql; return what it printed (unaligned, tuples only)."""
        psql = str(bin_dir() / "psql")
        address = ["-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres"]
        result = subprocess.run(
            [psql, *address, "-d", database, "-XtAqc", sql],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()


@dataclass
class Pair:
    """A primary and its streaming hot standby."""

    root: Path
    primary: Server
    standby: Server

    def wait_streaming(self, timeout: float = TIMEOUT) -> None:
        """Wait until the standby streams from the primary and has replayed what it has."""
        deadline = time.monotonic() + timeout
        sql = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
        while self.primary.psql(sql) == "0":
            if time.monotonic() > deadline:
                raise RuntimeError("the standby did not start streaming in time")
            time.sleep(0.05)
        self.wait_replayed(timeout)

    def wait_replayed(self, timeout: float = TIMEOUT) -> None:
        """Wait until the standby has replayed everything the primary has flushed."""
        deadline = time.monotonic() + timeout
        target = self.primary.psql("SELECT pg_current_wal_flush_lsn()")
        sql = f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
        while self.standby.psql(sql) != "t":
            if time.monotonic() > deadline:
                raise RuntimeError("the standby did not catch up in time")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop both servers at once and remove their data."""
        for server in (self.standby, self.primary):
            if server.running:
                with contextlib.suppress(Exception):
                    server.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)


def _own(path: Path, user: str | None) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(path, entry.pw_uid, entry.pw_gid)


def start_pair(database: str = DATABASE) -> Pair:
    """Start a primary with ``database`` and a hot standby streaming from it."""
    user = server_user()
    root = Path(tempfile.mkdtemp(prefix="pastetrader-replica-"))
    _own(root, user)
    primary = Server(root / "primary", free_port(), user)
    standby = Server(root / "standby", free_port(), user)
    pair = Pair(root, primary, standby)
    try:
        primary.run("initdb", "-D", str(primary.data), "-U", "postgres", "--auth=trust",
                    "-E", "UTF8", "--no-sync")  # fmt: skip
        with (primary.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\nwal_level = replica\nmax_wal_senders = 5\nhot_standby = on\n"
                "fsync = off\nfull_page_writes = off\nmax_connections = 100\n"
                # Queries on the standby are never cancelled for replay in a test run.
                "max_standby_streaming_delay = -1\n"
            )
        with (primary.data / "pg_hba.conf").open("a") as hba:
            hba.write("\nhost replication all 127.0.0.1/32 trust\n")
        primary.start()
        primary.psql(f'CREATE DATABASE "{database}"')
        primary.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U",
                    "postgres", "-D", str(standby.data), "-R", "-X", "stream", "-c", "fast",
                    "--no-sync")  # fmt: skip
        standby.start()
        pair.wait_streaming()
    except BaseException:
        pair.stop()
        raise
    return pair


@contextlib.contextmanager
def running_pair(database: str = DATABASE) -> Iterator[Pair]:
    """Yield a started primary and standby; stop both and remove their data afterwards."""
    pair = start_pair(database)
    try:
        yield pair
    finally:
        pair.stop()
