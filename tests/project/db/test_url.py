"""DatabaseURL: parsing, normalization, rendering, and keeping the password out of sight."""

from __future__ import annotations

import dataclasses
import traceback

import pytest

from project.db.url import DRIVER, MASK, DatabaseURL
from project.exceptions import ImproperlyConfigured, ProjectError

PASSWORD = "s3cr3t-Pw!"
# The password as it may appear percent-encoded in a rendered URL.
PASSWORD_FORMS = (PASSWORD, "s3cr3t-Pw%21", "s3cr3t")


def assert_no_password(text: str) -> None:
    for form in PASSWORD_FORMS:
        assert form not in text, f"password leaked in {text!r}"


def error_of(raw: str, name: str = "DATABASE_URL") -> ImproperlyConfigured:
    with pytest.raises(ImproperlyConfigured) as info:
        DatabaseURL.parse(raw, name=name)
    return info.value


# --- parsing ------------------------------------------------------------------------------


def test_parse_reads_every_component() -> None:
    url = DatabaseURL.parse(f"postgresql+asyncpg://alice:{PASSWORD}@db.example.com:6543/orders")
    assert url.username == "alice"
    assert url.password == PASSWORD
    assert url.host == "db.example.com"
    assert url.port == 6543
    assert url.database == "orders"
    assert url.query == ()


def test_parse_leaves_missing_parts_none() -> None:
    url = DatabaseURL.parse("postgresql://localhost/app")
    assert url == DatabaseURL(database="app", host="localhost")
    assert url.port is None
    assert url.username is None
    assert url.password is None


def test_parse_user_without_password() -> None:
    url = DatabaseURL.parse("postgresql://bob@localhost/app")
    assert url.username == "bob"
    assert url.password is None
    assert url.render() == f"{DRIVER}://bob@localhost/app"


def test_parse_empty_password_is_kept_as_empty() -> None:
    url = DatabaseURL.parse("postgresql://bob:@localhost/app")
    assert url.password == ""
    assert url.render(hide_password=False) == f"{DRIVER}://bob:@localhost/app"


@pytest.mark.parametrize(
    "scheme", ["postgresql+asyncpg", "postgresql", "postgres", "POSTGRES", "PostgreSQL"]
)
def test_every_accepted_scheme_means_asyncpg(scheme: str) -> None:
    url = DatabaseURL.parse(f"{scheme}://u:{PASSWORD}@h:5432/db")
    assert url == DatabaseURL(database="db", host="h", port=5432, username="u", password=PASSWORD)
    assert url.render(hide_password=False) == "postgresql+asyncpg://u:s3cr3t-Pw%21@h:5432/db"
    assert str(url).startswith("postgresql+asyncpg://")


def test_parse_strips_surrounding_whitespace() -> None:
    url = DatabaseURL.parse("  postgresql://u@h/db \n")
    assert url == DatabaseURL(database="db", host="h", username="u")


def test_unix_socket_form_takes_the_host_from_the_query() -> None:
    url = DatabaseURL.parse("postgresql://u@/db?host=/tmp")
    assert url.host is None
    assert url.username == "u"
    assert url.database == "db"
    assert url.query_dict == {"host": "/tmp"}  # noqa: S108
    # The socket directory stays readable: "/" is not percent-encoded.
    assert url.render() == f"{DRIVER}://u@/db?host=/tmp"
    assert DatabaseURL.parse(url.render()) == url


def test_unix_socket_with_port_and_password() -> None:
    url = DatabaseURL.parse(f"postgres://u:{PASSWORD}@/db?host=/var/run/postgresql&port=5433")
    assert url.query_dict == {"host": "/var/run/postgresql", "port": "5433"}
    assert url.port is None
    assert url.render() == f"{DRIVER}://u:{MASK}@/db?host=/var/run/postgresql&port=5433"


def test_query_dict_returns_every_parameter() -> None:
    url = DatabaseURL.parse("postgresql://h/db?sslmode=require&application_name=my%20app&x=")
    assert url.query == (("sslmode", "require"), ("application_name", "my app"), ("x", ""))
    assert url.query_dict == {"sslmode": "require", "application_name": "my app", "x": ""}


def test_query_dict_is_a_copy() -> None:
    url = DatabaseURL.parse("postgresql://h/db?sslmode=require")
    url.query_dict["sslmode"] = "disable"
    assert url.query_dict == {"sslmode": "require"}


def test_query_dict_of_a_url_without_query_is_empty() -> None:
    assert DatabaseURL.parse("postgresql://h/db").query_dict == {}


def test_percent_encoded_parts_are_decoded() -> None:
    url = DatabaseURL.parse("postgresql://us%40er%3Ax:p%40ss%2Fw%3Ard%23%3F@host/my%20db")
    assert url.username == "us@er:x"
    assert url.password == "p@ss/w:rd#?"
    assert url.database == "my db"


def test_at_sign_in_a_raw_password_splits_at_the_last_one() -> None:
    url = DatabaseURL.parse("postgresql://u:p@ss@host/db")
    assert url.password == "p@ss"
    assert url.host == "host"


def test_ipv6_host_is_parsed_without_brackets() -> None:
    url = DatabaseURL.parse(f"postgresql://u:{PASSWORD}@[2001:db8::1]:5432/db")
    assert url.host == "2001:db8::1"
    assert url.port == 5432


def test_ipv6_host_without_port() -> None:
    url = DatabaseURL.parse("postgresql://[::1]/db")
    assert url.host == "::1"
    assert url.port is None
    assert url.render() == f"{DRIVER}://[::1]/db"


# --- rendering ----------------------------------------------------------------------------


def test_render_masks_the_password_by_default() -> None:
    url = DatabaseURL.parse(f"postgresql://u:{PASSWORD}@h:5432/db")
    assert url.render() == f"{DRIVER}://u:{MASK}@h:5432/db"
    assert url.render(hide_password=True) == url.render()
    assert_no_password(url.render())


def test_render_shows_the_password_when_asked() -> None:
    url = DatabaseURL.parse(f"postgresql://u:{PASSWORD}@h:5432/db")
    assert url.render(hide_password=False) == f"{DRIVER}://u:s3cr3t-Pw%21@h:5432/db"


def test_str_is_the_masked_render() -> None:
    url = DatabaseURL.parse(f"postgresql://u:{PASSWORD}@h/db")
    assert str(url) == url.render()
    assert f"{url}" == f"{DRIVER}://u:{MASK}@h/db"


def test_repr_hides_the_password_but_says_where() -> None:
    url = DatabaseURL.parse(f"postgresql://u:{PASSWORD}@db.example.com:6543/orders")
    text = repr(url)
    assert_no_password(text)
    assert "db.example.com" in text
    assert "6543" in text
    assert "orders" in text
    assert "DatabaseURL" in text


@pytest.mark.parametrize(
    "text",
    [
        "postgresql+asyncpg://h/db",
        "postgresql+asyncpg://u@h/db",
        "postgresql+asyncpg://u:pw@h/db",
        "postgresql+asyncpg://u:pw@h:5432/db",
        "postgresql+asyncpg://u:@h/db",
        "postgresql+asyncpg://u@/db?host=/tmp",
        "postgresql+asyncpg://u:pw@h/db?sslmode=require&application_name=a+b",
        "postgresql+asyncpg://u:pw@[::1]:5432/db",
        "postgresql+asyncpg://u:pw@[2001:db8::2]/db",
        "postgresql+asyncpg://us%40er:p%40ss%3Aw%2Frd@h/my%20db",
        "postgresql+asyncpg://:pw@h/db",
    ],
)
def test_render_then_parse_round_trips(text: str) -> None:
    url = DatabaseURL.parse(text)
    rendered = url.render(hide_password=False)
    assert rendered == text
    assert DatabaseURL.parse(rendered) == url


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("us@r:name", "p@ss:w/rd#?%&= "),
        ("plain", "%41%42"),
        ("ünïcödé", "pässwörd"),
        ("u/v", "a+b c"),
        ("", "only-password"),
    ],
)
def test_special_characters_in_user_and_password_are_quoted(username: str, password: str) -> None:
    url = DatabaseURL(
        database="db", host="h", port=5432, username=username or None, password=password
    )
    rendered = url.render(hide_password=False)
    authority = rendered.removeprefix(f"{DRIVER}://").split("@h:5432/")[0]
    # Nothing in the user info may be mistaken for a delimiter once quoted.
    for delimiter in "@/#? ":
        assert delimiter not in authority
    assert authority.count(":") == 1
    assert DatabaseURL.parse(rendered) == url


def test_special_characters_in_the_database_name_are_quoted() -> None:
    url = DatabaseURL(database="my db/1?#", host="h")
    assert url.render() == f"{DRIVER}://h/my%20db%2F1%3F%23"
    assert DatabaseURL.parse(url.render()) == url


def test_ipv6_host_is_rendered_in_brackets() -> None:
    url = DatabaseURL(database="db", host="2001:db8::1", port=5432, username="u")
    assert url.render() == f"{DRIVER}://u@[2001:db8::1]:5432/db"
    assert DatabaseURL.parse(url.render()) == url


def test_ipv4_and_names_are_not_bracketed() -> None:
    assert DatabaseURL(database="db", host="10.0.0.1").render() == f"{DRIVER}://10.0.0.1/db"
    assert DatabaseURL(database="db", host="db.local").render() == f"{DRIVER}://db.local/db"


def test_password_without_username_is_kept() -> None:
    url = DatabaseURL.parse(f"postgresql://:{PASSWORD}@h/db")
    assert url.username is None
    assert url.password == PASSWORD
    assert url.render() == f"{DRIVER}://:{MASK}@h/db"
    assert DatabaseURL.parse(url.render(hide_password=False)) == url


@pytest.mark.parametrize("param", ["password", "sslpassword"])
def test_a_password_in_the_query_is_masked(param: str) -> None:
    url = DatabaseURL.parse(f"postgresql://u@h/db?sslmode=require&{param}={PASSWORD}")
    assert url.query_dict[param] == PASSWORD
    for text in (str(url), repr(url), url.render()):
        assert_no_password(text)
    assert url.render() == f"{DRIVER}://u@h/db?sslmode=require&{param}={MASK}"
    assert DatabaseURL.parse(url.render(hide_password=False)) == url


# --- with_database ------------------------------------------------------------------------


def test_with_database_changes_only_the_database() -> None:
    url = DatabaseURL.parse(f"postgresql://u:{PASSWORD}@h:5432/app?sslmode=require")
    other = url.with_database("postgres")
    assert other.database == "postgres"
    assert other == dataclasses.replace(url, database="postgres")
    assert other.password == PASSWORD
    assert other.query_dict == {"sslmode": "require"}
    assert other.render() == f"{DRIVER}://u:{MASK}@h:5432/postgres?sslmode=require"


def test_with_database_leaves_the_original_alone() -> None:
    url = DatabaseURL.parse("postgresql://h/app")
    url.with_database("other")
    assert url.database == "app"


def test_with_database_quotes_the_new_name() -> None:
    url = DatabaseURL.parse("postgresql://h/app").with_database("test_app gw0")
    assert url.render() == f"{DRIVER}://h/test_app%20gw0"


def test_urls_are_frozen_and_hashable() -> None:
    url = DatabaseURL.parse("postgresql://u:pw@h/db")
    with pytest.raises(dataclasses.FrozenInstanceError):
        url.database = "other"  # type: ignore[misc]
    assert len({url, DatabaseURL.parse("postgres://u:pw@h/db")}) == 1
    assert url != url.with_database("other")


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (
            "mysql://u:pw@h/db",
            "DATABASE_URL has unsupported scheme 'mysql'; use postgresql+asyncpg://, "
            "postgresql:// or postgres://",
        ),
        (
            "postgresql+psycopg://u@h/db",
            "DATABASE_URL has unsupported scheme 'postgresql+psycopg'; use "
            "postgresql+asyncpg://, postgresql:// or postgres://",
        ),
        (
            "sqlite:///db.sqlite3",
            "DATABASE_URL has unsupported scheme 'sqlite'; use postgresql+asyncpg://, "
            "postgresql:// or postgres://",
        ),
        (
            "not a url",
            "DATABASE_URL is not a URL; expected "
            "postgresql+asyncpg://user:password@host:port/database",
        ),
        (
            "localhost:5432/db",
            "DATABASE_URL is not a URL; expected "
            "postgresql+asyncpg://user:password@host:port/database",
        ),
        (
            "://h/db",
            "DATABASE_URL is not a URL; expected "
            "postgresql+asyncpg://user:password@host:port/database",
        ),
        ("postgresql://u@h:port/db", "DATABASE_URL has a bad port; expected a number"),
        ("postgresql://u@h:99999/db", "DATABASE_URL has a bad port; expected a number"),
        ("postgresql://u@h:-1/db", "DATABASE_URL has a bad port; expected a number"),
        (
            "postgresql://u@h/",
            "DATABASE_URL names no database; add /<database> after the host",
        ),
        (
            "postgresql://u@h",
            "DATABASE_URL names no database; add /<database> after the host",
        ),
        (
            "postgresql://u@h:5432?sslmode=require",
            "DATABASE_URL names no database; add /<database> after the host",
        ),
        ("postgresql://u@/db", "DATABASE_URL names no host"),
        ("postgresql:///db", "DATABASE_URL names no host"),
        ("postgresql:///db?host=", "DATABASE_URL names no host"),
        (
            "postgresql://u@[::1/db",
            "DATABASE_URL is not a valid URL; an IPv6 host goes in [brackets]",
        ),
    ],
)
def test_bad_urls_raise_one_line_naming_the_variable(raw: str, message: str) -> None:
    error = error_of(raw)
    assert str(error) == message
    assert "\n" not in str(error)
    assert isinstance(error, ProjectError)
    assert error.exit_code == 1


def test_errors_name_the_variable_they_were_given() -> None:
    error = error_of("mysql://h/db", name="DATABASE_DIRECT_URL")
    assert str(error).startswith("DATABASE_DIRECT_URL has unsupported scheme 'mysql'")
    assert "DATABASE_URL " not in str(error)


def test_the_default_name_is_database_url() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^DATABASE_URL names no host$"):
        DatabaseURL.parse("postgresql:///db")


@pytest.mark.parametrize(
    "raw",
    [
        f"mysql://u:{PASSWORD}@h/db",
        f"u:{PASSWORD}@h/db",
        f"u:{PASSWORD}@h/db?sslrootcert=https://ca.example.com/root.crt",
        f"{PASSWORD}://u@h/db",
        f"postgresql://u:{PASSWORD}@h:port/db",
        f"postgresql://u:{PASSWORD}@h:99999/db",
        f"postgresql://u:{PASSWORD}@h/",
        f"postgresql://u:{PASSWORD}@/db",
        f"postgresql://u:{PASSWORD}@[::1/db",
        f"postgresql://u:{PASSWORD}@[not-an-address]/db",
        f"postgresql://u:{PASSWORD}#x@h/db",
        f"postgresql://u:{PASSWORD}/x@h/db",
        f"postgresql://u@/db?password={PASSWORD}",
    ],
)
def test_no_error_shows_the_password(raw: str) -> None:
    error = error_of(raw)
    assert_no_password(str(error))
    assert_no_password(repr(error))
    assert_no_password("".join(traceback.format_exception(error)))
    assert error.__cause__ is None
    assert error.__suppress_context__ or error.__context__ is None


def test_every_client_gets_the_same_server() -> None:
    url = DatabaseURL.parse("postgresql://app:s%40cret@db.example:6543/app?sslmode=require")
    assert url.connect_kwargs() == {
        "host": "db.example",
        "port": 6543,
        "user": "app",
        "password": "s@cret",
        "database": "app",
        "ssl": "require",
    }
    assert url.libpq_env() == {
        "PGHOST": "db.example",
        "PGPORT": "6543",
        "PGUSER": "app",
        "PGPASSWORD": "s@cret",
        "PGDATABASE": "app",
        "PGSSLMODE": "require",
    }
    engine_url = url.to_sqlalchemy()
    assert engine_url.drivername == DRIVER
    assert (engine_url.host, engine_url.port, engine_url.database) == ("db.example", 6543, "app")
    assert engine_url.password == "s@cret"
    assert "s@cret" not in repr(engine_url)


def test_a_socket_url_gives_the_socket_to_every_client() -> None:
    url = DatabaseURL.parse("postgresql:///pastetrader?host=/run/pg&port=5999")
    assert url.connect_kwargs() == {"host": "/run/pg", "port": 5999, "database": "pastetrader"}
    assert url.libpq_env() == {"PGHOST": "/run/pg", "PGPORT": "5999", "PGDATABASE": "pastetrader"}


@pytest.mark.parametrize("param", ["ssl", "sslmode"])
def test_connect_kwargs_keep_the_tls_mode(param: str) -> None:
    url = DatabaseURL.parse(f"postgresql://u:p@db.example:5432/app?{param}=verify-full")
    assert url.connect_kwargs()["ssl"] == "verify-full"
