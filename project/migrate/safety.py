"""Keep a running migration from stalling the application: timeouts, retries, blockers.

- Every revision's transaction starts with ``SET LOCAL lock_timeout`` and
  ``statement_timeout`` (``MIGRATE_DDL_LOCK_TIMEOUT``, ``MIGRATE_STATEMENT_TIMEOUT``), raw
  ``op.execute`` SQL included: the settings ride on the transaction, not on Alembic's
  operations. An ``autocommit_block`` gets them as plain ``SET`` (there is no transaction
  to be local to), reset when the migrations end.
- ``CREATE INDEX CONCURRENTLY`` first drops an INVALID index of the same name, the
  leftover of a build that failed: otherwise the retry fails with "already exists", or
  ``IF NOT EXISTS`` keeps the broken index.
- A revision that hits the lock timeout is rolled back whole (each revision has its own
  transaction) and retried ``MIGRATE_DDL_RETRIES`` times with a growing pause, during
  which the queries queued behind it run. When the retries are used up, the error names
  the backend that holds the lock.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from project.conf import get_settings

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

LOCK_NOT_AVAILABLE = "55P03"
_INSTALLED = "pastetrader.migration_timeouts"
_CONCURRENT_INDEX = re.compile(
    r"\s*CREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"((?:\"[^\"]+\"|[\w$]+)(?:\.(?:\"[^\"]+\"|[\w$]+))?)",
    re.IGNORECASE,
)


def _duration(seconds: float) -> str:
    """Render seconds as PostgreSQL reads a duration setting ('0' is no limit)."""
    return f"{round(seconds * 1000)}ms" if seconds > 0 else "0"


@dataclass
class _State:
    lock_timeout: str
    statement_timeout: str
    pending: bool = False
    session_level: bool = False
    echo: Callable[[str], None] | None = None


def _autocommit(connection: Connection) -> bool:
    return connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def apply_timeouts(
    connection: Connection,
    *,
    lock_timeout: float | None = None,
    statement_timeout: float | None = None,
    echo: Callable[[str], None] | None = None,
) -> None:
    """Make every transaction that ``connection`` begins from now on run with the
    migration timeouts (default: the settings), and drop an INVALID index left behind
    before a concurrent build of that name. Idempotent per connection."""
    from sqlalchemy import event

    settings = get_settings()
    state = _State(
        _duration(settings.migrate_ddl_lock_timeout if lock_timeout is None else lock_timeout),
        _duration(
            settings.migrate_statement_timeout if statement_timeout is None else statement_timeout
        ),
        echo=echo,
    )
    installed = connection.info.get(_INSTALLED)
    if isinstance(installed, _State):  # a retry runs env.py again on the same connection
        installed.lock_timeout, installed.statement_timeout = (
            state.lock_timeout,
            state.statement_timeout,
        )
        installed.echo = echo or installed.echo
        return
    connection.info[_INSTALLED] = state

    def begin(conn: Connection) -> None:
        # The BEGIN itself is sent lazily with the first statement; set the timeouts then.
        state.pending = True

    def before_cursor_execute(
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        autocommit = _autocommit(conn)
        if state.pending:
            state.pending = False
            local = "false" if autocommit else "true"
            state.session_level = state.session_level or autocommit
            cursor.execute(
                f"SELECT set_config('lock_timeout', '{state.lock_timeout}', {local}), "
                f"set_config('statement_timeout', '{state.statement_timeout}', {local})"
            )
        match = _CONCURRENT_INDEX.match(statement)
        if match and autocommit:
            _drop_invalid_index(cursor, match[1], state.echo)

    event.listen(connection, "begin", begin)
    event.listen(connection, "before_cursor_execute", before_cursor_execute)


class OfflineTimeouts:
    """The offline (``--sql``) output, with the ``SET LOCAL`` timeouts that ``migrate``
    sends after each ``BEGIN``, so the printed SQL is what runs and is as safe to run
    by hand."""

    def __init__(self, inner: IO[str]) -> None:
        settings = get_settings()
        self.inner = inner
        self.settings = (
            f"SET LOCAL lock_timeout = '{_duration(settings.migrate_ddl_lock_timeout)}';\n\n"
            f"SET LOCAL statement_timeout = '{_duration(settings.migrate_statement_timeout)}';"
            "\n\n"
        )

    def write(self, text: str) -> int:
        """Write ``text``, and the timeouts after a ``BEGIN``."""
        written = self.inner.write(text)
        if text.startswith("BEGIN;"):
            self.inner.write(self.settings)
        return written

    def flush(self) -> None:
        """Flush the output underneath."""
        self.inner.flush()


def reset_timeouts(connection: Connection) -> None:
    """Undo the plain ``SET`` an autocommit block needed, so a connection the caller
    keeps does not carry the migration timeouts on."""
    state = connection.info.get(_INSTALLED)
    if isinstance(state, _State) and state.session_level:
        state.session_level = False
        connection.exec_driver_sql("RESET lock_timeout")
        connection.exec_driver_sql("RESET statement_timeout")


def _drop_invalid_index(cursor: Any, name: str, echo: Callable[[str], None] | None) -> None:
    """Drop index ``name`` when it exists and is INVALID (a failed concurrent build)."""
    literal = name.replace("'", "''")
    cursor.execute(
        "SELECT c.oid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        f"WHERE c.oid = to_regclass('{literal}') AND NOT i.indisvalid"
    )
    rows = cursor.fetchall()
    if rows:
        cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {rows[0][0]}")
        if echo is not None:
            echo(f"  Dropped INVALID index {rows[0][0]} left by a failed concurrent build")


def is_lock_timeout(error: BaseException) -> bool:
    """Tell whether ``error`` (or what it wraps) is PostgreSQL's lock_not_available."""
    seen: BaseException | None = error
    while seen is not None:
        for candidate in (seen, getattr(seen, "orig", None)):
            if getattr(candidate, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                return True
        seen = seen.__cause__
    return False


def pause(attempt: int) -> float:
    """Return the seconds to wait before retry ``attempt`` (1, 2, ...): 0.5 s doubling,
    at most 10 s, so the queries that queued behind the failed statement drain first."""
    return float(min(0.5 * 2 ** (attempt - 1), 10.0))


def tables_of(statement: str | None) -> list[str]:
    """Return the tables ``statement`` names, in order (the ones it would lock)."""
    if not statement:
        return []
    try:
        from pglast import parse_sql
        from pglast.ast import RangeVar
        from pglast.visitors import Visitor
    except ImportError:  # pragma: no cover - pglast is a dependency
        return []

    names: list[str] = []

    class Collect(Visitor):
        def visit_RangeVar(self, ancestors: Any, node: RangeVar) -> None:
            name = f"{node.schemaname}.{node.relname}" if node.schemaname else str(node.relname)
            if name not in names:
                names.append(name)

    try:
        Collect()(parse_sql(statement))
    except Exception:  # not parseable: a regex is good enough for a message
        found = re.findall(r"\b(?:TABLE|ON|INTO|FROM)\s+(?:ONLY\s+)?([\w.\"]+)", statement, re.I)
        return [f.replace('"', "") for f in found]
    return names


@dataclass(frozen=True)
class Blocker:
    """A backend holding a lock on a table, as pg_stat_activity shows it."""

    pid: int
    user: str | None
    application: str | None
    state: str | None
    seconds: float | None
    query: str | None
    mode: str

    def __str__(self) -> str:
        held = f"{self.seconds:.1f} s" if self.seconds is not None else "an unknown time"
        return (
            f"pid {self.pid} (user {self.user}, application {self.application or '-'!r}, "
            f"{self.state or 'unknown state'} for {held}, holding {self.mode}, "
            f"query {(self.query or '').strip()!r})"
        )


_BLOCKERS = """
SELECT a.pid, a.usename, a.application_name, a.state,
       extract(epoch FROM now() - a.state_change)::float8, left(a.query, 60), l.mode
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.pid <> pg_backend_pid()
  AND l.relation = to_regclass(:table)
ORDER BY a.xact_start NULLS LAST, a.pid
LIMIT 1
"""


def find_blocker(connection: Connection, table: str) -> Blocker | None:
    """Return the oldest transaction's backend that holds a lock on ``table`` now (the
    failed statement's lock wait has just ended, and a holder that makes us time out
    is still there), or None."""
    from sqlalchemy import text

    row = connection.execute(text(_BLOCKERS), {"table": table}).first()
    connection.rollback()
    if row is None:
        return None
    return Blocker(int(row[0]), row[1], row[2], row[3], row[4], row[5], str(row[6]))


def blocked_report(connection: Connection, error: BaseException) -> tuple[str, Blocker | None]:
    """Return the table the failed statement waited for and who holds a lock on it."""
    statement = getattr(error, "statement", None)
    tables = [t for t in tables_of(statement) if t != "alembic_version"]
    for table in tables:
        blocker = find_blocker(connection, table)
        if blocker is not None:
            return table, blocker
    return (tables[0] if tables else "unknown"), None


def run_with_retries(
    connection: Connection,
    attempt: Callable[[], None],
    *,
    failed_revision: Callable[[], str],
    at: Callable[[], str],
    echo: Callable[[str], None],
    retries: int | None = None,
) -> None:
    """Run ``attempt`` (one ``command.upgrade``), again after a lock timeout, up to
    ``retries`` more times (default MIGRATE_DDL_RETRIES); then raise CommandError naming
    the revision, the table and the blocking backend. Other errors propagate."""
    from project.exceptions import CommandError

    settings = get_settings()
    retries = settings.migrate_ddl_retries if retries is None else retries
    for number in range(retries + 1):
        try:
            attempt()
            return
        except Exception as error:
            if not is_lock_timeout(error):
                raise
            connection.rollback()
            revision = failed_revision()
            table, blocker = blocked_report(connection, error)
            holder = str(blocker) if blocker else "no backend holds a lock on it any more"
            if number < retries:
                wait = pause(number + 1)
                echo(
                    f"  {revision} timed out waiting for a lock on {table} (held by "
                    f"{'pid ' + str(blocker.pid) if blocker else 'nobody now'}); rolled back, "
                    f"retry {number + 1} of {retries} in {wait:g} s"
                )
                time.sleep(wait)
                continue
            tries = f"{retries + 1} attempts" if retries else "1 attempt"
            raise CommandError(
                f"revision {revision} gave up waiting for a lock on table {table} after "
                f"{tries} of {settings.migrate_ddl_lock_timeout:g} s "
                f"(MIGRATE_DDL_LOCK_TIMEOUT, MIGRATE_DDL_RETRIES); held by {holder}; "
                f"the database is at {at()}"
            ) from error
