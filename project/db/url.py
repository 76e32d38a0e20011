"""``DatabaseURL``: a PostgreSQL URL, parsed once, printed without the password, and
converted to what each client takes (SQLAlchemy, asyncpg, libpq's environment for psql).

Every translation of a URL into driver arguments is a method here, so the engine, the
maintenance connections, the embedded server and ``dbshell`` agree on what a URL means.
Kept free of SQLAlchemy so that reading settings stays cheap (``manage.py --help``);
which URL is in use is ``project.db.target``'s answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from project.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

DRIVER = "postgresql+asyncpg"
_SCHEMES = {"postgresql+asyncpg", "postgresql", "postgres"}
MASK = "***"
# Query parameters libpq reads a secret from; masked like the password.
_SECRET_PARAMS = {"password", "sslpassword"}
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")


@dataclass(frozen=True)
class DatabaseURL:
    """A PostgreSQL URL, normalized to the asyncpg driver."""

    database: str
    host: str | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    query: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, raw: str, *, name: str = "DATABASE_URL") -> DatabaseURL:
        """Parse ``raw``; a bad URL raises ImproperlyConfigured naming ``name``."""
        raw = raw.strip()
        scheme, sep, _ = raw.partition("://")
        # Without a plausible scheme before "://", the text is not shown: it may hold a password.
        if not sep or not _SCHEME.fullmatch(scheme):
            raise ImproperlyConfigured(
                f"{name} is not a URL; expected {DRIVER}://user:password@host:port/database"
            )
        if scheme.lower() not in _SCHEMES:
            raise ImproperlyConfigured(
                f"{name} has unsupported scheme {scheme!r}; use {DRIVER}://, postgresql:// "
                "or postgres://"
            )
        try:
            parts = urlsplit(raw)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name} is not a valid URL; an IPv6 host goes in [brackets]"
            ) from None
        try:
            port = parts.port
        except ValueError:
            raise ImproperlyConfigured(f"{name} has a bad port; expected a number") from None
        database = unquote(parts.path.lstrip("/"))
        if not database:
            raise ImproperlyConfigured(f"{name} names no database; add /<database> after the host")
        query = tuple(parse_qsl(parts.query, keep_blank_values=True))
        if not parts.hostname and not dict(query).get("host"):
            raise ImproperlyConfigured(f"{name} names no host")
        return cls(
            database=database,
            host=unquote(parts.hostname) if parts.hostname else None,
            port=port,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            query=query,
        )

    def with_database(self, database: str) -> DatabaseURL:
        """Return the same server with another database."""
        return replace(self, database=database)

    def render(self, *, hide_password: bool = True) -> str:
        """Return the URL as text; the password is masked unless asked otherwise."""
        auth = ""
        if self.username is not None or self.password is not None:
            auth = quote(self.username or "", safe="")
            if self.password is not None:
                secret = MASK if hide_password else quote(self.password, safe="")
                auth += f":{secret}"
            auth += "@"
        host = self.host or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{self.port}" if self.port is not None else ""
        params = self.query
        if hide_password:
            params = tuple((k, MASK if k in _SECRET_PARAMS else v) for k, v in params)
        query = f"?{urlencode(params, safe='/*')}" if params else ""
        return f"{DRIVER}://{auth}{host}{port}/{quote(self.database, safe='')}{query}"

    @property
    def query_dict(self) -> dict[str, str]:
        """Return the query parameters as a dict."""
        return dict(self.query)

    def to_sqlalchemy(self) -> URL:
        """Return SQLAlchemy's URL for the asyncpg driver (imports SQLAlchemy)."""
        from sqlalchemy.engine import URL

        return URL.create(
            DRIVER,
            username=self.username,
            password=self.password,
            host=self.host,
            port=self.port,
            database=self.database,
            query=self.query_dict,
        )

    def connect_kwargs(self) -> dict[str, Any]:
        """Return ``asyncpg.connect()``'s arguments, the TLS mode included.

        A ``host`` or ``port`` query parameter (a Unix socket's directory, as the embedded
        server's URL has) wins over the URL's own, as in libpq.
        """
        query = self.query_dict
        kwargs: dict[str, Any] = {
            "host": query.get("host", self.host),
            "port": int(query["port"]) if "port" in query else self.port,
            "user": self.username,
            "password": self.password,
            "database": self.database,
            # asyncpg takes libpq's sslmode values as ``ssl``; either spelling is accepted.
            "ssl": query.get("ssl", query.get("sslmode")),
        }
        return {k: v for k, v in kwargs.items() if v is not None}

    def libpq_env(self) -> dict[str, str]:
        """Return libpq's environment variables (``PGHOST`` ...) for psql and its kin.

        The password travels this way, never in a command line, where ``ps`` shows it.
        """
        names = {"host": "PGHOST", "port": "PGPORT", "user": "PGUSER"}
        names |= {"password": "PGPASSWORD", "database": "PGDATABASE", "ssl": "PGSSLMODE"}
        return {names[key]: str(value) for key, value in self.connect_kwargs().items()}

    def __str__(self) -> str:
        return self.render()

    def __repr__(self) -> str:
        return f"DatabaseURL({self.render()!r})"
