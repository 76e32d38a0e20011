"""The Alembic glue: configuration, the migration lock, and the migration commands.

Each command is a plain function, as in ``alembic.command``; ``manage.py`` is a thin layer
over them. Every online command runs on one direct connection (``DATABASE_DIRECT_URL`` when
set), handed to ``migrations/env.py`` through ``config.attributes["connection"]``.
"""

from __future__ import annotations

import asyncio
import io
import re
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, TypeVar

from project.conf import BASE_DIR, get_settings
from project.exceptions import CommandError, first_line, summary

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import Script, ScriptDirectory
    from sqlalchemy import Column, MetaData
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

    from project.db.url import DatabaseURL

T = TypeVar("T")
LOCK_NAME = "pastetrader.migrate"
LOCK_KEY = zlib.crc32(LOCK_NAME.encode())  # a stable 32-bit key for pg_advisory_lock
_CALL = re.compile(r"\w+\s*\(")
_RELATIVE = re.compile(r"[+-][1-9][0-9]*\Z")  # Alembic's relative steps: -1, +2


def _normalize_default(text: str) -> str:
    return re.sub(r"[\s()]|::[\w ]+", "", text).lower()


def compare_server_default(
    context: MigrationContext,
    inspected_column: Column[Any],
    metadata_column: Column[Any],
    inspected_default: str | None,
    metadata_default: Any,
    rendered_metadata_default: str | None,
) -> bool | None:
    """Compare function defaults as text; Alembic would evaluate them, and volatile ones
    such as ``gen_random_uuid()`` never compare equal. Literals use Alembic's comparison."""
    texts = [t for t in (inspected_default, rendered_metadata_default) if t]
    if not any(_CALL.search(t) for t in texts):
        return None
    return _normalize_default(inspected_default or "") != _normalize_default(
        (rendered_metadata_default or "").strip("'\"")
    )


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render project column types as the plain SQL types they store (no import of the
    project in revision files), and leave everything else to Alembic."""
    from project.orm.types import ENUM_LENGTH, EnumString

    if type_ == "type" and isinstance(obj, EnumString):
        return f"sa.String(length={ENUM_LENGTH})"
    return False


def context_options(config: Config) -> dict[str, Any]:
    """Return the options ``env.py`` passes to ``context.configure``."""
    options: dict[str, Any] = {
        "compare_type": True,
        "compare_server_default": compare_server_default,
        "render_item": render_item,
        # A failing revision rolls back alone; the version table always tells the truth.
        "transaction_per_migration": True,
    }
    options.update(config.attributes.get("context_options", {}))
    return options


def target_metadata() -> MetaData:
    """Return ``Base.metadata`` with every installed app's models loaded."""
    from project.apps import apps
    from project.models import Base

    apps.load_models()
    return Base.metadata


def create_migration_engine(url: DatabaseURL | None = None) -> AsyncEngine:
    """Create a one-shot engine on ``url`` (default: the direct database URL)."""
    from project.db import create_engine, direct_database_url

    return create_engine(url or direct_database_url(), pooled=False)


def alembic_config(output: io.StringIO | None = None) -> Config:
    """Return the project's Alembic configuration (``alembic.ini``), paths made absolute.

    Alembic's own printing goes to ``output`` (discarded by default): commands report
    through their return values instead.
    """
    from alembic.config import Config

    buffer = output or io.StringIO()
    config = Config(str(BASE_DIR / "alembic.ini"), stdout=buffer, output_buffer=buffer)
    config.set_main_option("script_location", str(BASE_DIR / "migrations"))
    return config


def script_directory(config: Config | None = None) -> ScriptDirectory:
    """Return the migrations' ScriptDirectory."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(config or alembic_config())


def _alembic_errors() -> tuple[type[BaseException], ...]:
    from alembic.util import CommandError as AlembicCommandError

    return (AlembicCommandError,)


_NOT_AT_HEAD = "the database is not at the latest migration"
_MIGRATE_FIRST = "run 'manage.py migrate' first"


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except _alembic_errors() as exc:
        message = first_line(str(exc))
        if message == "Target database is not up to date.":  # autogenerate's own check
            message = f"{_NOT_AT_HEAD}; {_MIGRATE_FIRST}"
        raise CommandError(message) from exc


def _require_at_head(script: ScriptDirectory, heads: tuple[str, ...]) -> None:
    """Refuse to compare the models with a database the migrations have not caught up."""
    latest = script.get_heads()
    if set(heads) != set(latest):
        at, head = ", ".join(heads) or "base", ", ".join(latest)
        raise CommandError(f"{_NOT_AT_HEAD} (at {at}, head is {head}); {_MIGRATE_FIRST}")


def _require_single_head(script: ScriptDirectory) -> None:
    heads = script.get_heads()
    if len(heads) > 1:
        raise CommandError(
            f"the migrations have {len(heads)} heads ({', '.join(sorted(heads))}); "
            "run 'manage.py makemigrations --merge'"
        )


async def take_lock(connection: Any, timeout: float | None = None) -> None:
    """Take the migration lock on ``connection`` (an AsyncConnection), waiting at most
    ``timeout`` seconds (default: MIGRATE_LOCK_TIMEOUT)."""
    if timeout is None:
        timeout = get_settings().migrate_lock_timeout
    from sqlalchemy import exc, text

    await connection.execute(text(f"SET lock_timeout = '{int(timeout * 1000)}ms'"))
    try:
        await connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": LOCK_KEY})
    except exc.DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) != "55P03":
            raise
        raise CommandError(
            f"another migration is running: advisory lock {LOCK_NAME!r} (key {LOCK_KEY}) "
            f"still held after {timeout:g} s (MIGRATE_LOCK_TIMEOUT)"
        ) from None
    await connection.execute(text("RESET lock_timeout"))
    # Session-level lock: it outlives this commit, and each revision gets its own transaction.
    await connection.commit()


def run_online(
    work: Callable[[Config, Connection], T],
    *,
    lock: bool = False,
    url: DatabaseURL | None = None,
) -> T:
    """Run ``work(config, connection)`` on a direct connection (or on ``url``), under the
    migration lock when ``lock``."""

    async def main() -> T:
        engine = create_migration_engine(url)
        try:
            async with engine.connect() as connection:
                if lock:
                    await take_lock(connection)

                def call(sync_connection: Connection) -> T:
                    config = alembic_config()
                    config.attributes["connection"] = sync_connection
                    with _translated():
                        return work(config, sync_connection)

                result = await connection.run_sync(call)
                await connection.commit()
                return result
        finally:
            await engine.dispose()

    return asyncio.run(main())


def current_heads(connection: Connection) -> tuple[str, ...]:
    """Return the revisions recorded in the database's version table."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_heads()


@dataclass(frozen=True)
class Migration:
    """One revision and whether it is applied."""

    revision: str
    message: str
    applied: bool

    def __str__(self) -> str:
        mark = "X" if self.applied else " "
        return f"[{mark}] {self.revision} {self.message}".rstrip()


def _applied(script: ScriptDirectory, heads: tuple[str, ...]) -> set[str]:
    return {rev.revision for rev in script.iterate_revisions(heads, "base")} if heads else set()


def _ordered(script: ScriptDirectory) -> list[Script]:
    return list(reversed(list(script.walk_revisions())))


def showmigrations() -> list[Migration]:
    """Return every revision, oldest first, marked applied or pending."""
    script = script_directory()

    def work(config: Config, connection: Connection) -> list[Migration]:
        applied = _applied(script, current_heads(connection))
        return [
            Migration(rev.revision, rev.doc or "", rev.revision in applied)
            for rev in _ordered(script)
        ]

    return run_online(work)


def _resolve(script: ScriptDirectory, revision: str) -> str:
    """Return the full id of ``revision``: ``base``, ``head``, a relative step (``-1``,
    ``+2``: resolved against the database by ``_absolute``) or a revision's id."""
    if _RELATIVE.match(revision):
        return revision
    if revision in ("base", "zero"):
        return "base"
    if revision in ("head", "heads"):
        return revision
    try:
        found = script.get_revision(revision)
    except Exception:
        found = None
    if found is None:
        raise CommandError(f"unknown revision {revision!r}; see 'manage.py showmigrations'")
    return found.revision


def _direction(script: ScriptDirectory, heads: tuple[str, ...], target: str) -> str:
    """Return "upgrade", "downgrade" or "noop" for going from ``heads`` to ``target``."""
    if target == "base":
        return "downgrade" if heads else "noop"
    if target in ("head", "heads"):
        return "noop" if heads and set(heads) == set(script.get_heads()) else "upgrade"
    if target in heads:
        return "noop"
    return "downgrade" if target in _applied(script, heads) else "upgrade"


@dataclass(frozen=True)
class Plan:
    """What migrating will do: the direction, the target, the database's revisions now,
    and for a downgrade the revisions it unapplies (newest first) and the tables it drops
    (None when its SQL could not be rendered to tell)."""

    direction: str  # "upgrade", "downgrade" or "noop"
    target: str
    heads: tuple[str, ...] = ()
    unapplied: tuple[Migration, ...] = ()
    dropped_tables: tuple[str, ...] | None = ()

    def describe(self, action: str | None = None) -> str:
        """Return ``action`` (default: downgrade to the target) with what it unapplies and
        drops, for a confirmation prompt."""
        text = action or f"downgrade the database to {self.target}"
        if self.unapplied:
            text += ", unapplying " + ", ".join(
                f"{m.revision} ({m.message})" if m.message else m.revision for m in self.unapplied
            )
        if self.dropped_tables is None:
            text += " (which tables it drops is unknown: its SQL cannot be rendered offline)"
        elif self.dropped_tables:
            noun = "table" if len(self.dropped_tables) == 1 else "tables"
            text += f" and dropping {noun} {', '.join(self.dropped_tables)}"
        return text


def plan(revision: str = "head") -> Plan:
    """Return what migrating to ``revision`` would do, reading the database's revision."""
    script = script_directory()
    target = _resolve(script, revision)
    if target == "head":
        _require_single_head(script)
    heads = run_online(lambda config, connection: current_heads(connection))
    target = _absolute(script, heads, target)
    direction = _direction(script, heads, target)
    if direction == "downgrade":
        return _downgrade_plan(script, heads, target)
    return Plan(direction, target, heads)


def pending(plan: Plan) -> list[Migration]:
    """Return the revisions an upgrade ``plan`` applies, oldest first."""
    if plan.direction != "upgrade":
        return []
    script = script_directory()
    steps = script.iterate_revisions(plan.target, plan.heads or "base")
    return [
        Migration(rev.revision, " ".join((rev.doc or "").split()), applied=False)
        for rev in reversed(list(steps))
    ]


def rollback_plan(steps: int = 1) -> Plan:
    """Return what rolling back ``steps`` revisions would do; an impossible rollback (more
    steps than applied revisions) is an error here, before anyone is asked to confirm."""
    if steps < 1:
        raise CommandError(f"--steps must be at least 1, got {steps}")
    script = script_directory()
    heads = run_online(lambda config, connection: current_heads(connection))
    return _downgrade_plan(script, heads, _steps_back(script, heads, steps))


def _steps_back(script: ScriptDirectory, heads: tuple[str, ...], steps: int) -> str:
    """Return the revision ``steps`` revisions below ``heads`` (``base`` for all of them)."""
    if not heads:
        raise CommandError("nothing to roll back: no migration is applied")
    available = len(_applied(script, heads))
    if steps > available:
        noun = "revision" if steps == 1 else "revisions"
        raise CommandError(f"cannot roll back {steps} {noun}; only {available} applied")
    if len(heads) > 1:
        raise CommandError(
            f"the database is at {len(heads)} heads ({', '.join(sorted(heads))}); "
            "name the revision to go back to"
        )
    current = heads[0]
    for _ in range(steps):
        found = script.get_revision(current)
        assert found is not None
        down = found.down_revision
        if isinstance(down, tuple | list):
            if len(down) > 1:  # which parent is "one back" is a guess: let the user say
                raise CommandError(
                    f"cannot count revisions back past merge revision {current}; "
                    "name the revision to go back to"
                )
            down = down[0] if down else None
        current = down or "base"
    return current


def _steps_forward(script: ScriptDirectory, heads: tuple[str, ...], steps: int) -> str:
    """Return the revision ``steps`` revisions above ``heads``."""
    _require_single_head(script)
    applied = _applied(script, heads)
    pending = [
        rev.revision
        for rev in reversed(list(script.iterate_revisions("heads", "base")))
        if rev.revision not in applied
    ]
    noun = "revision" if steps == 1 else "revisions"
    if steps > len(pending):
        left = f"only {len(pending)} pending" if pending else "the database is at head"
        raise CommandError(f"cannot upgrade {steps} {noun}; {left}")
    target = pending[steps - 1]
    if len(_applied(script, (target,)) - applied) != steps:  # branches: no single count
        raise CommandError(
            f"cannot count {steps} {noun} forward across branches; name the revision instead"
        )
    return target


def _absolute(script: ScriptDirectory, heads: tuple[str, ...], target: str) -> str:
    """Return ``target`` with a relative step (``-1``, ``+2``) counted from ``heads``."""
    if not _RELATIVE.match(target):
        return target
    steps = int(target)
    return _steps_back(script, heads, -steps) if steps < 0 else _steps_forward(script, heads, steps)


def _downgrade_plan(script: ScriptDirectory, heads: tuple[str, ...], target: str) -> Plan:
    kept = _applied(script, (target,)) if target != "base" else set()
    unapplied = tuple(
        Migration(rev.revision, " ".join((rev.doc or "").split()), applied=True)
        for rev in script.iterate_revisions(heads, "base")
        if rev.revision not in kept
    )
    return Plan("downgrade", target, heads, unapplied, dropped_tables(heads, target))


# The table names after CREATE TABLE / DROP TABLE (a DROP may list several).
_TABLE_DDL = re.compile(
    r"^\s*(CREATE|DROP)\s+TABLE\s+(?:IF\s+(?:NOT\s+)?EXISTS\s+)?([^;(]+)",
    re.IGNORECASE | re.MULTILINE,
)


def dropped_tables(heads: tuple[str, ...], target: str) -> tuple[str, ...] | None:
    """Return the tables that downgrading from ``heads`` to ``target`` drops, read from
    the downgrade's SQL rendered offline; None when that SQL cannot be rendered."""
    from alembic import command

    out = io.StringIO()
    config = alembic_config(out)
    try:
        for head in heads:
            command.downgrade(config, f"{head}:{target}", sql=True)
    except Exception:  # e.g. a downgrade that reads rows needs a live database to render
        return None
    first: dict[str, str] = {}  # a table created before it is dropped did not exist before
    for verb, names in _TABLE_DDL.findall(out.getvalue()):
        listed = names.split(",") if verb.upper() == "DROP" else [names]
        for name in listed:
            words = name.split()
            if words:
                first.setdefault(words[0].replace('"', ""), verb.upper())
    return tuple(n for n, verb in first.items() if verb == "DROP" and n != "alembic_version")


def _static_heads() -> set[str] | None:
    """Return the script's heads read from the revision files' literals (no import of
    Alembic or the files), or None when a file is not plain enough to read that way."""
    import ast

    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (BASE_DIR / "migrations" / "versions").glob("*.py"):
        values: dict[str, Any] = {}
        for node in ast.parse(path.read_bytes()).body:
            target: ast.expr | None = None
            if isinstance(node, ast.AnnAssign):
                target = node.target
            elif isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
            value = getattr(node, "value", None)
            if isinstance(target, ast.Name) and target.id in ("revision", "down_revision"):
                try:
                    values[target.id] = ast.literal_eval(value) if value is not None else None
                except ValueError:
                    return None
        revision, down = values.get("revision"), values.get("down_revision")
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        parents.update([down] if isinstance(down, str) else down or ())
    return revisions - parents


def at_head_quickly() -> bool | None:
    """Tell whether the database is at the single head, reading the revision files and
    the version table directly: no SQLAlchemy, no Alembic, so a no-op ``migrate`` costs
    a fraction of ``alembic upgrade head``. None when it cannot tell: ask Alembic."""
    import sys

    heads = _static_heads()
    if heads is None or len(heads) != 1:
        return None
    db = sys.modules.get("project.db.session")  # loaded: use_database() may point elsewhere
    try:
        if db is not None:
            url = db.direct_database_url()
        else:
            settings = get_settings()
            url = settings.database_direct_url or settings.database_url
            if url is None:
                from project.db import embedded

                url = embedded.ensure_running()
        versions = asyncio.run(_versions(url))
    except Exception:  # anything unusual: the full path reports it properly
        return None
    return versions == heads


async def _versions(url: DatabaseURL) -> set[str]:
    from project.db import admin as dbadmin

    conn = await dbadmin.connect(url)
    try:
        exists = await conn.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
        if not exists:
            return set()
        return {row[0] for row in await conn.fetch("SELECT version_num FROM alembic_version")}
    finally:
        await conn.close()


def planned_sql(revision: str = "head") -> tuple[str, str | None]:
    """Return the SQL that ``migrate REVISION`` would run from the database's current
    revision (a downgrade's for an older one), and a note when the database could not be
    asked and the SQL starts from an empty database."""
    from alembic import command

    script = script_directory()
    target = _resolve(script, revision)
    if target == "head":
        _require_single_head(script)
    try:
        heads = run_online(lambda config, connection: current_heads(connection))
    except CommandError:
        raise
    except Exception as error:  # unreachable: render from base, as plain Alembic does
        from project.management import describe

        if _RELATIVE.match(target):
            raise CommandError(
                f"{target} counts from the database's revision, which could not be read "
                f"({describe(error)})"
            ) from error
        note = f"the database could not be asked ({describe(error)}); SQL from an empty one"
        return sql(revision), note
    target = _absolute(script, heads, target)
    direction = _direction(script, heads, target)
    if direction == "noop":
        return f"-- nothing to do: the database is at {', '.join(heads) or 'base'}\n", None
    out = io.StringIO()
    config = alembic_config(out)
    start = heads[0] if heads else None
    with _translated():
        if direction == "downgrade":
            command.downgrade(config, f"{start}:{target}", sql=True)
        else:
            command.upgrade(config, f"{start}:{target}" if start else target, sql=True)
    return out.getvalue(), None


def _failed_revision(script: ScriptDirectory, connection: Connection, target: str) -> str:
    heads = current_heads(connection)
    steps = list(script.iterate_revisions(target, heads or "base"))
    return steps[-1].revision if steps else target


def upgrade(
    revision: str = "head",
    *,
    echo: Callable[[str], None] = print,
    url: DatabaseURL | None = None,
) -> None:
    """Upgrade the database (or the one at ``url``) to ``revision`` under the migration
    lock."""
    from alembic import command

    from project.migrate import safety as migration_safety

    script = script_directory()
    target = _resolve(script, revision)
    if target == "head":
        _require_single_head(script)

    def work(config: Config, connection: Connection) -> None:
        goal = target
        if _RELATIVE.match(target):  # counted from where the database is, under the lock
            goal = _absolute(script, current_heads(connection), target)
            connection.commit()
        config.attributes["context_options"] = {"on_version_apply": _reporter(echo)}
        config.attributes["echo"] = echo
        try:
            migration_safety.run_with_retries(
                connection,
                lambda: command.upgrade(config, goal),
                failed_revision=lambda: _failed_revision(script, connection, goal),
                at=lambda: ", ".join(current_heads(connection)) or "base",
                echo=echo,
            )
        except CommandError:  # the retries' own report
            raise
        except _alembic_errors():
            raise
        except Exception as exc:
            connection.rollback()
            failed = _failed_revision(script, connection, goal)
            now = ", ".join(current_heads(connection)) or "base"
            raise CommandError(
                f"revision {failed} failed and was rolled back "
                f"({summary(exc)}); the database is at {now}"
            ) from exc

    run_online(work, lock=True, url=url)


def _check_unchanged(heads: tuple[str, ...], expected: tuple[str, ...] | None) -> None:
    if expected is not None and set(heads) != set(expected):
        was, now = ", ".join(expected) or "base", ", ".join(heads) or "base"
        raise CommandError(
            f"the database moved from {was} to {now} since the plan was made; run it again"
        )


def downgrade(
    revision: str,
    *,
    echo: Callable[[str], None] = print,
    from_heads: tuple[str, ...] | None = None,
) -> None:
    """Downgrade the database to ``revision`` (``base`` for an empty schema).

    With ``from_heads`` (a Plan's), refuse when the database is no longer there: what
    was confirmed is what runs.
    """

    script = script_directory()
    target = _resolve(script, revision)

    def work(config: Config, connection: Connection) -> None:
        heads = current_heads(connection)
        # End the read's implicit transaction: each revision then gets its own.
        connection.commit()
        _check_unchanged(heads, from_heads)
        config.attributes["context_options"] = {"on_version_apply": _reporter(echo)}
        _downgrade_with_retries(config, connection, _absolute(script, heads, target), echo)

    run_online(work, lock=True)


def rollback(
    steps: int = 1,
    *,
    echo: Callable[[str], None] = print,
    from_heads: tuple[str, ...] | None = None,
) -> None:
    """Downgrade ``steps`` revisions (refusing, with ``from_heads``, a database that is no
    longer where the plan found it)."""

    if steps < 1:
        raise CommandError(f"--steps must be at least 1, got {steps}")
    script = script_directory()

    def work(config: Config, connection: Connection) -> None:
        heads = current_heads(connection)
        connection.commit()
        _check_unchanged(heads, from_heads)
        target = _steps_back(script, heads, steps)
        config.attributes["context_options"] = {"on_version_apply": _reporter(echo)}
        _downgrade_with_retries(config, connection, target, echo)

    run_online(work, lock=True)


def _downgrade_with_retries(
    config: Config, connection: Connection, target: str, echo: Callable[[str], None]
) -> None:
    """Downgrade to ``target``, retrying a revision that hit the DDL lock timeout."""
    from alembic import command

    from project.migrate import safety as migration_safety

    def at() -> str:
        return ", ".join(current_heads(connection)) or "base"

    config.attributes["echo"] = echo
    migration_safety.run_with_retries(
        connection, lambda: command.downgrade(config, target), failed_revision=at, at=at, echo=echo
    )


def _reporter(echo: Callable[[str], None]) -> Callable[..., None]:
    def report(*, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        verb = "Applied" if step.is_upgrade else "Unapplied"
        doc = step.up_revision.doc if step.up_revision is not None else ""
        echo(f"  {verb} {step.up_revision_id} {doc or ''}".rstrip())

    return report


def sql(revision: str = "head", *, start: str | None = None) -> str:
    """Return the SQL that upgrades from ``start`` (default base) to ``revision``."""
    from alembic import command

    script = script_directory()
    target = _resolve(script, revision)
    target = _absolute(script, (start,) if start and start != "base" else (), target)
    out = io.StringIO()
    config = alembic_config(out)
    with _translated():
        command.upgrade(config, f"{start}:{target}" if start else target, sql=True)
    return out.getvalue()


def sqlmigrate(revision: str) -> str:
    """Return the SQL of one revision's upgrade."""
    script = script_directory()
    target = _resolve(script, revision)
    if target in ("base", "head", "heads") or _RELATIVE.match(target):
        found = script.get_revision("head") if target == "head" else None
        if found is None:
            raise CommandError(f"sqlmigrate needs one revision, got {revision!r}")
        target = found.revision
    rev = script.get_revision(target)
    assert rev is not None
    down = rev.down_revision
    if isinstance(down, tuple | list):
        if len(down) > 1:
            return _merge_sql(target, tuple(down))
        down = down[0]
    return sql(target, start=down or "base")


def _merge_sql(target: str, parents: tuple[str, ...]) -> str:
    """Return the SQL of merge revision ``target`` alone, starting from all its parents
    (``upgrade parent:target --sql`` would also render the other parents' branches)."""
    out = io.StringIO()
    config = alembic_config(out)
    render_upgrade(config, script_directory(config), target, starting_rev=parents)
    return out.getvalue()


def render_upgrade(
    config: Config,
    script: ScriptDirectory,
    target: str,
    *,
    starting_rev: str | tuple[str, ...] | None = None,
) -> None:
    """Render the upgrade to ``target`` offline into ``config``'s output, on a
    ScriptDirectory the caller already has (``command.upgrade`` would load another).

    The one place that calls Alembic's ``ScriptDirectory._upgrade_revs``, the step
    function ``command.upgrade`` itself uses: no public API takes several starting
    revisions or an existing ScriptDirectory. ``tests/project/migrate/test_api.py`` fails
    if it goes away.
    """
    from alembic.runtime.environment import EnvironmentContext

    def upgrade(rev: Any, context: Any) -> Any:
        return script._upgrade_revs(target, rev)

    with (
        _translated(),
        EnvironmentContext(
            config,
            script,
            fn=upgrade,
            as_sql=True,
            starting_rev=starting_rev,
            destination_rev=target,
        ),
    ):
        script.run_env()


@dataclass(frozen=True)
class WrittenRevision:
    """A revision file ``makemigrations`` wrote, and what its upgrade does."""

    path: str
    operations: tuple[str, ...]
    findings: tuple[str, ...] = ()  # what the linter still reports in it, one per line
    revision: str = ""


def _table(name: str | None, schema: str | None) -> str:
    return f"{schema}.{name}" if schema else str(name)


def _alterations(op: Any) -> str:
    """Return what an AlterColumnOp changes, e.g. ``type VARCHAR(20) -> TEXT, NOT NULL``."""
    changes = []
    if op.modify_type is not None:
        was = f"{op.existing_type} -> " if op.existing_type is not None else ""
        changes.append(f"type {was}{op.modify_type}")
    if op.modify_nullable is not None:
        changes.append("NULL allowed" if op.modify_nullable else "NOT NULL")
    if op.modify_server_default is not False:  # False means untouched; None means dropped
        changes.append("server default")
    if op.modify_comment is not False:
        changes.append("comment")
    if op.modify_name is not None:
        changes.append(f"renamed to {op.modify_name}")
    return ", ".join(changes)


def describe_operations(operations: Any) -> list[str]:
    """Return one line per Alembic operation in ``operations`` (an ``UpgradeOps`` or any
    op container), e.g. ``create table notes`` or ``add column notes.title``."""
    from alembic.operations import ops

    lines: list[str] = []
    for op in operations.ops:
        table = _table(getattr(op, "table_name", None), getattr(op, "schema", None))
        if isinstance(op, ops.ModifyTableOps | ops.OpContainer):
            lines += describe_operations(op)
        elif isinstance(op, ops.CreateTableOp):
            lines.append(f"create table {table}")
        elif isinstance(op, ops.DropTableOp):
            lines.append(f"drop table {table}")
        elif isinstance(op, ops.AddColumnOp):
            lines.append(f"add column {table}.{op.column.name}")
        elif isinstance(op, ops.DropColumnOp):
            lines.append(f"drop column {table}.{op.column_name}")
        elif isinstance(op, ops.AlterColumnOp):
            lines.append(f"alter column {table}.{op.column_name} ({_alterations(op)})")
        elif isinstance(op, ops.CreateIndexOp):
            columns = ", ".join(getattr(c, "name", None) or str(c) for c in op.columns)
            kind = "unique index" if op.unique else "index"
            lines.append(f"add {kind} {op.index_name} on {table} ({columns})")
        elif isinstance(op, ops.DropIndexOp):
            lines.append(f"drop index {op.index_name} on {table}")
        elif isinstance(op, ops.CreateForeignKeyOp):
            source = _table(op.source_table, op.kw.get("source_schema"))
            lines.append(f"add foreign key {op.constraint_name} on {source} -> {op.referent_table}")
        elif isinstance(op, ops.DropConstraintOp):
            lines.append(f"drop constraint {op.constraint_name} on {table}")
        elif isinstance(op, ops.ExecuteSQLOp):
            lines.append(f"run {' '.join(str(op.sqltext).split())}")
        else:  # e.g. CreateUniqueConstraintOp -> "create unique constraint NAME on TABLE"
            words = re.sub(r"(?<!^)(?=[A-Z])", " ", type(op).__name__.removesuffix("Op")).lower()
            name = getattr(op, "constraint_name", None) or getattr(op, "index_name", None)
            where = f" on {table}" if getattr(op, "table_name", None) else ""
            lines.append(f"{words}{f' {name}' if name else ''}{where}")
    return lines


def makemigrations(message: str | None = None, *, empty: bool = False) -> list[WrittenRevision]:
    """Write a revision autogenerated from the models; return what was written, with
    one line per operation it detected.

    An autogenerate that finds no change writes nothing and returns an empty list.
    Indexes and foreign keys on existing tables are written the safe way
    (``project.migrate.autogen``), and the linter's findings come with each revision.
    """
    from alembic import command

    from project.migrate import autogen as migration_autogen
    from project.migrate import lint as migration_lint

    script = script_directory()
    _require_single_head(script)
    detected: dict[str, tuple[str, ...]] = {}

    def inspect_directives(context: Any, revision: Any, directives: list[Any]) -> None:
        if not empty and directives and directives[0].upgrade_ops.is_empty():
            directives[:] = []
        for directive in directives:
            for upgrade_ops in directive.upgrade_ops_list:
                migration_autogen.make_safe(upgrade_ops)
            for downgrade_ops in directive.downgrade_ops_list:
                migration_autogen.make_downgrade_safe(downgrade_ops)
        migration_autogen.split_concurrent(directives)
        for directive in directives:
            detected[directive.rev_id] = tuple(
                line for ops in directive.upgrade_ops_list for line in describe_operations(ops)
            )

    def work(config: Config, connection: Connection) -> list[WrittenRevision]:
        if not empty:  # autogenerate compares with the database: it must be at head
            _require_at_head(script, current_heads(connection))
        with redirect_stdout(io.StringIO()):  # Alembic prints "Generating ..." itself
            written = command.revision(
                config,
                message=message or "auto",
                autogenerate=not empty,
                process_revision_directives=inspect_directives,
            )
        scripts = written if isinstance(written, list) else [written]
        return [
            WrittenRevision(s.path, detected.get(s.revision, ()), revision=s.revision)
            for s in scripts
            if s is not None
        ]

    written = run_online(work)
    # What was written is linted as migrate would lint it: say so now, not at deploy.
    verdicts = {v.revision: v for v in migration_lint.lint([w.revision for w in written])}
    return [
        replace(
            w,
            findings=tuple(line for f in verdicts[w.revision].findings for line in f.lines()),
        )
        if w.revision in verdicts
        else w
        for w in written
    ]


def model_changes() -> list[str]:
    """Return the differences between the models and the migrated database (empty: none)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    script = script_directory()
    _require_single_head(script)
    metadata = target_metadata()

    def work(config: Config, connection: Connection) -> list[str]:
        _require_at_head(script, current_heads(connection))
        context = MigrationContext.configure(
            connection, opts={**context_options(config), "target_metadata": metadata}
        )
        return [_describe(diff) for diff in compare_metadata(context, metadata)]

    return run_online(work)


def _describe(diff: Any) -> str:
    if isinstance(diff, list):  # column-level changes come grouped
        return "; ".join(_describe(d) for d in diff)
    kind, *rest = diff
    names = [getattr(x, "name", None) or getattr(x, "key", None) for x in rest]
    where = ".".join(str(n) for n in names if isinstance(n, str))
    return f"{kind} {where}".strip()


def merge(message: str | None = None) -> str | None:
    """Merge the migration heads into one revision; return its path (None: one head)."""
    from alembic import command

    config = alembic_config()
    heads = script_directory(config).get_heads()
    if len(heads) < 2:
        return None
    with _translated(), redirect_stdout(io.StringIO()):
        written = command.merge(config, heads, message=message or "merge")
    return written.path if written is not None else None
