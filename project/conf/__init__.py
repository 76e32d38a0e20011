"""Read the settings from the environment and ``.env``, validating every value.

The real environment wins over the file. A bad value raises ImproperlyConfigured with one
line that names the variable; the database password never appears in a message.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from project.conf.envfile import read_env_file
from project.db.url import DatabaseURL
from project.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parents[2]
DEFAULT_ENV_FILE = BASE_DIR / ".env"
ENVIRONMENTS = ("development", "test", "production")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}

T = TypeVar("T")
#: Every variable the settings read.
VARIABLES = (
    "DATABASE_URL",
    "DATABASE_DIRECT_URL",
    "ENVIRONMENT",
    "DEBUG",
    "DB_POOL_SIZE",
    "DB_MAX_OVERFLOW",
    "DB_POOL_TIMEOUT",
    "DB_POOL_RECYCLE",
    "DB_POOL_PRE_PING",
    "DB_PGBOUNCER",
    "MIGRATE_LOCK_TIMEOUT",
    "MIGRATE_DDL_LOCK_TIMEOUT",
    "MIGRATE_DDL_RETRIES",
    "MIGRATE_STATEMENT_TIMEOUT",
    "API_TOKENS",
    "DATABASE_REPLICA_URLS",
    "DB_REPLICA_MAX_LAG",
)


@dataclass(frozen=True)
class Settings:
    """The validated settings of one process."""

    database_url: DatabaseURL | None
    environment: str = "development"
    debug: bool = False
    pool_size: int = 5
    max_overflow: int = 10
    pool_timeout: float = 30.0
    pool_recycle: int = 1800
    pool_pre_ping: bool = True
    # A direct (not pooled by PgBouncer) URL for migrations and their advisory lock.
    database_direct_url: DatabaseURL | None = None
    migrate_lock_timeout: float = 60.0
    # Each revision's transaction: lock_timeout and statement_timeout (0: no limit), and
    # how often a revision that hit the lock timeout is retried whole.
    migrate_ddl_lock_timeout: float = 5.0
    migrate_ddl_retries: int = 3
    migrate_statement_timeout: float = 0.0
    # DATABASE_URL goes through PgBouncer in transaction pooling mode (older than 1.21):
    # no statement caches, a unique name for every prepared statement.
    pgbouncer: bool = False
    # sha256 hex digests of the API bearer tokens: the tokens themselves are not kept.
    api_token_hashes: tuple[str, ...] = field(default=(), repr=False)
    # Streaming hot standbys for read-only sessions, and the replay lag past which one is
    # left out of rotation.
    database_replica_urls: tuple[DatabaseURL, ...] = ()
    replica_max_lag: float = 5.0
    env_file: Path | None = field(default=None, compare=False)

    @property
    def is_production(self) -> bool:
        """Return whether ENVIRONMENT is production."""
        return self.environment == "production"

    @property
    def uses_embedded_database(self) -> bool:
        """Return whether the embedded PostgreSQL serves the database."""
        return self.database_url is None


def _parse(name: str, raw: str, convert: Callable[[str], T], expected: str) -> T:
    try:
        return convert(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be {expected}, got {raw!r}") from None


def _bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(raw)


def _int(minimum: int) -> Callable[[str], int]:
    def convert(raw: str) -> int:
        value = int(raw)
        if value < minimum:
            raise ValueError(raw)
        return value

    return convert


def _seconds(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(raw)
    return value


def _seconds_or_zero(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value) or value < 0:
        raise ValueError(raw)
    return value


def _environment(raw: str) -> str:
    if raw.lower() not in ENVIRONMENTS:
        raise ValueError(raw)
    return raw.lower()


def _token_hashes(raw: str | None) -> tuple[str, ...]:
    """Hash the comma-separated API_TOKENS; ``sha256:<hex>`` entries are hashes already.

    Errors never show a token, not even a bad one.
    """
    import hashlib

    hashes: list[str] = []
    for position, entry in enumerate((raw or "").split(","), start=1):
        token = entry.strip()
        if not token:
            continue
        if token.startswith("sha256:"):
            digest = token.removeprefix("sha256:").lower()
            if not re.fullmatch(r"[0-9a-f]{64}", digest):
                raise ImproperlyConfigured(
                    f"API_TOKENS entry {position} is not sha256: and 64 hex digits"
                )
            hashes.append(digest)
        elif len(token) < 16:
            raise ImproperlyConfigured(
                f"API_TOKENS entry {position} is shorter than 16 characters; "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        else:
            hashes.append(hashlib.sha256(token.encode()).hexdigest())
    return tuple(hashes)


def _url(name: str, raw: str | None) -> DatabaseURL | None:
    if raw is None or not raw.strip():
        return None
    return DatabaseURL.parse(raw, name=name)


def _urls(name: str, raw: str | None) -> tuple[DatabaseURL, ...]:
    """Parse a comma-separated list of URLs; an error names the variable and the entry."""
    entries = [entry for entry in (raw or "").split(",") if entry.strip()]
    return tuple(
        DatabaseURL.parse(entry, name=name if len(entries) == 1 else f"{name} entry {position}")
        for position, entry in enumerate(entries, start=1)
    )


def settings_from(values: Mapping[str, str], env_file: Path | None = None) -> Settings:
    """Build Settings from a mapping of variables, validating each one."""

    def get(name: str, convert: Callable[[str], T], expected: str, default: T) -> T:
        raw = values.get(name)
        if raw is None or raw.strip() == "":
            return default
        return _parse(name, raw, convert, expected)

    environment = get(
        "ENVIRONMENT", _environment, "one of " + ", ".join(ENVIRONMENTS), "development"
    )
    database_url = _url("DATABASE_URL", values.get("DATABASE_URL"))
    if database_url is None and environment == "production":
        raise ImproperlyConfigured(
            "DATABASE_URL must be set when ENVIRONMENT=production; "
            "the embedded PostgreSQL is for development and tests only"
        )
    return Settings(
        database_url=database_url,
        environment=environment,
        debug=get("DEBUG", _bool, "true or false", False),
        pool_size=get("DB_POOL_SIZE", _int(1), "a positive integer", 5),
        max_overflow=get("DB_MAX_OVERFLOW", _int(0), "a non-negative integer", 10),
        pool_timeout=get("DB_POOL_TIMEOUT", _seconds, "a positive number of seconds", 30.0),
        pool_recycle=get("DB_POOL_RECYCLE", _int(0), "a non-negative number of seconds", 1800),
        pool_pre_ping=get("DB_POOL_PRE_PING", _bool, "true or false", True),
        database_direct_url=_url("DATABASE_DIRECT_URL", values.get("DATABASE_DIRECT_URL")),
        pgbouncer=get("DB_PGBOUNCER", _bool, "true or false", False),
        migrate_lock_timeout=get(
            "MIGRATE_LOCK_TIMEOUT", _seconds, "a positive number of seconds", 60.0
        ),
        migrate_ddl_lock_timeout=get(
            "MIGRATE_DDL_LOCK_TIMEOUT", _seconds_or_zero, "a non-negative number of seconds", 5.0
        ),
        migrate_ddl_retries=get("MIGRATE_DDL_RETRIES", _int(0), "a non-negative integer", 3),
        migrate_statement_timeout=get(
            "MIGRATE_STATEMENT_TIMEOUT", _seconds_or_zero, "a non-negative number of seconds", 0.0
        ),
        api_token_hashes=_token_hashes(values.get("API_TOKENS")),
        database_replica_urls=_urls("DATABASE_REPLICA_URLS", values.get("DATABASE_REPLICA_URLS")),
        replica_max_lag=get("DB_REPLICA_MAX_LAG", _seconds, "a positive number of seconds", 5.0),
        env_file=env_file,
    )


def _looks_like_ours(name: str, prefixes: set[str]) -> bool:
    """Tell whether an environment variable's first word is (close to) one of ours:
    DB_POOL_SIZ and DATABSE_URL are, DBUS_SESSION_BUS_ADDRESS and DEBIAN_FRONTEND not."""
    first = name.split("_", 1)[0]
    return first in prefixes or bool(difflib.get_close_matches(first, prefixes, cutoff=0.8))


def misspelled_settings(
    file_values: Mapping[str, str], environ: Mapping[str, str], source: str = ".env"
) -> list[str]:
    """Return one line per key, in ``source`` (the env file) or the environment, that is
    not a setting but close to one's name, with the name it probably means. Only the
    keys are read, never a value. Environment variables count only when their first
    word is close to one of ours: the environment holds many that are none of ours."""
    known = set(VARIABLES)
    prefixes = {name.split("_", 1)[0] for name in VARIABLES}
    lines: list[str] = []
    seen: set[str] = set()
    candidates = [(key, source) for key in file_values] + [
        (key, "the environment") for key in environ if _looks_like_ours(key, prefixes)
    ]
    for key, where in candidates:
        if key in known or key in seen:
            continue
        seen.add(key)
        close = difflib.get_close_matches(key, VARIABLES, n=1, cutoff=0.8)
        if close:
            lines.append(f"{key} in {where} is not a setting; did you mean {close[0]}?")
    return lines


_warned: set[str] = set()


def _warn_misspelled(lines: list[str]) -> None:
    """Print each line as a warning on stderr, once per process: a typo is not an error."""
    for line in lines:
        if line not in _warned:
            _warned.add(line)
            print(f"Warning: {line}", file=sys.stderr)


def load_settings(env_file: Path | None = None) -> Settings:
    """Read the environment over ``env_file`` (default: ``.env`` in the project root),
    warning about keys that look like a misspelled setting."""
    path = env_file if env_file is not None else DEFAULT_ENV_FILE
    file_values: dict[str, str] = {}
    if env_file is not None or path.is_file():
        file_values = read_env_file(path)
    source = ".env" if env_file is None else str(env_file)
    _warn_misspelled(misspelled_settings(file_values, os.environ, source))
    return settings_from({**file_values, **os.environ}, env_file=path if file_values else None)


_current: Settings | None = None
_env_file: Path | None = None


def get_settings() -> Settings:
    """Return this process's settings, reading them on first use."""
    global _current
    if _current is None:
        _current = load_settings(_env_file)
    return _current


def use_env_file(path: Path | None) -> None:
    """Read settings from ``path`` instead of the default ``.env`` from now on."""
    global _env_file, _current
    _env_file = path
    _current = None


def override_settings(settings: Settings | None) -> None:
    """Replace this process's settings (None: read them again on next use)."""
    global _current
    _current = settings
