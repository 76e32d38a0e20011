"""Settings: every variable, its default, its validation, and reading ``.env`` files."""

from __future__ import annotations

import dataclasses
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest

from project import conf
from project.conf import (
    Settings,
    get_settings,
    load_settings,
    override_settings,
    settings_from,
    use_env_file,
)
from project.db.url import DatabaseURL
from project.exceptions import ImproperlyConfigured, ProjectError

PASSWORD = "s3cr3t-Pw!"
PASSWORD_FORMS = (PASSWORD, "s3cr3t-Pw%21", "s3cr3t")
URL = f"postgresql://app:{PASSWORD}@db.example.com:6543/orders"

VARIABLES = conf.VARIABLES


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Run each test with none of the variables set and no default ``.env``; then forget
    whatever settings the test loaded."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(conf, "DEFAULT_ENV_FILE", tmp_path / "no-such-dir" / ".env")
    yield
    override_settings(None)
    use_env_file(None)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def error_of(values: dict[str, str]) -> ImproperlyConfigured:
    with pytest.raises(ImproperlyConfigured) as info:
        settings_from(values)
    return info.value


def assert_no_password(text: str) -> None:
    for form in PASSWORD_FORMS:
        assert form not in text, f"password leaked in {text!r}"


# --- defaults -----------------------------------------------------------------------------


def test_defaults_when_nothing_is_set() -> None:
    settings = settings_from({})
    assert settings.database_url is None
    assert settings.environment == "development"
    assert settings.debug is False
    assert settings.pool_size == 5
    assert settings.max_overflow == 10
    assert settings.pool_timeout == 30.0
    assert settings.pool_recycle == 1800
    assert settings.pool_pre_ping is True
    assert settings.database_direct_url is None
    assert settings.migrate_lock_timeout == 60.0
    assert settings.env_file is None
    assert settings.uses_embedded_database is True
    assert settings.is_production is False


def test_defaults_match_the_dataclass_defaults() -> None:
    assert settings_from({}) == Settings(database_url=None)


@pytest.mark.parametrize("blank", ["", " ", "\t"])
def test_blank_values_mean_the_default(blank: str) -> None:
    settings = settings_from(dict.fromkeys(VARIABLES, blank))
    assert settings == Settings(database_url=None)


def test_unrelated_variables_are_ignored() -> None:
    assert settings_from({"PATH": "/usr/bin", "DB_POOL": "x"}) == Settings(database_url=None)


# --- DATABASE_URL -------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql+asyncpg", "postgresql", "postgres"])
def test_database_url_schemes_are_normalized_to_asyncpg(scheme: str) -> None:
    settings = settings_from({"DATABASE_URL": f"{scheme}://app:{PASSWORD}@db.example.com:6543/o"})
    url = settings.database_url
    assert url is not None
    assert url.render(hide_password=False) == (
        "postgresql+asyncpg://app:s3cr3t-Pw%21@db.example.com:6543/o"
    )
    assert url == DatabaseURL(
        database="o", host="db.example.com", port=6543, username="app", password=PASSWORD
    )
    assert settings.uses_embedded_database is False


def test_database_url_unix_socket_form() -> None:
    url = settings_from({"DATABASE_URL": "postgresql://u@/db?host=/tmp"}).database_url
    assert url is not None
    assert url.host is None
    assert url.username == "u"
    assert url.database == "db"
    assert url.query_dict == {"host": "/tmp"}  # noqa: S108
    assert str(url) == "postgresql+asyncpg://u@/db?host=/tmp"


def test_database_url_surrounding_whitespace_is_ignored() -> None:
    settings = settings_from({"DATABASE_URL": "  postgres://h/db  "})
    assert settings.database_url == DatabaseURL(database="db", host="h")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("mysql://u@h/db", "DATABASE_URL has unsupported scheme 'mysql'"),
        ("not-a-url", "DATABASE_URL is not a URL"),
        ("postgresql://u@h:abc/db", "DATABASE_URL has a bad port"),
        ("postgresql://u@h:70000/db", "DATABASE_URL has a bad port"),
        ("postgresql://u@h/", "DATABASE_URL names no database"),
        ("postgresql://u@/db", "DATABASE_URL names no host"),
    ],
)
def test_bad_database_url(raw: str, message: str) -> None:
    error = error_of({"DATABASE_URL": raw})
    assert str(error).startswith(message)
    assert "\n" not in str(error)


def test_production_requires_database_url() -> None:
    error = error_of({"ENVIRONMENT": "production"})
    assert str(error) == (
        "DATABASE_URL must be set when ENVIRONMENT=production; "
        "the embedded PostgreSQL is for development and tests only"
    )


def test_production_with_a_blank_database_url_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^DATABASE_URL must be set"):
        settings_from({"ENVIRONMENT": "production", "DATABASE_URL": "   "})


def test_production_with_only_a_direct_url_is_refused() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"^DATABASE_URL must be set"):
        settings_from({"ENVIRONMENT": "production", "DATABASE_DIRECT_URL": URL})


def test_production_with_database_url() -> None:
    settings = settings_from({"ENVIRONMENT": "production", "DATABASE_URL": URL})
    assert settings.is_production is True
    assert settings.uses_embedded_database is False


@pytest.mark.parametrize("environment", ["development", "test"])
def test_embedded_database_outside_production(environment: str) -> None:
    settings = settings_from({"ENVIRONMENT": environment})
    assert settings.uses_embedded_database is True
    assert settings.is_production is False


# --- DATABASE_DIRECT_URL ------------------------------------------------------------------


def test_database_direct_url() -> None:
    settings = settings_from(
        {
            "DATABASE_URL": "postgresql://u@pgbouncer:6432/app",
            "DATABASE_DIRECT_URL": "postgres://u@primary:5432/app",
        }
    )
    assert settings.database_direct_url == DatabaseURL(
        database="app", host="primary", port=5432, username="u"
    )
    assert settings.database_url == DatabaseURL(
        database="app", host="pgbouncer", port=6432, username="u"
    )


def test_database_direct_url_without_database_url() -> None:
    settings = settings_from({"DATABASE_DIRECT_URL": "postgresql://h/app"})
    assert settings.database_url is None
    assert settings.database_direct_url == DatabaseURL(database="app", host="h")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("mysql://h/db", "DATABASE_DIRECT_URL has unsupported scheme 'mysql'"),
        ("nope", "DATABASE_DIRECT_URL is not a URL"),
        ("postgresql://h:x/db", "DATABASE_DIRECT_URL has a bad port"),
        ("postgresql://h", "DATABASE_DIRECT_URL names no database"),
        ("postgresql:///db", "DATABASE_DIRECT_URL names no host"),
    ],
)
def test_bad_database_direct_url_names_its_own_variable(raw: str, message: str) -> None:
    error = error_of({"DATABASE_URL": URL, "DATABASE_DIRECT_URL": raw})
    assert str(error).startswith(message)


# --- ENVIRONMENT --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("development", "development"),
        ("test", "test"),
        ("TEST", "test"),
        (" Development ", "development"),
    ],
)
def test_environment(raw: str, expected: str) -> None:
    assert settings_from({"ENVIRONMENT": raw}).environment == expected


@pytest.mark.parametrize("raw", ["production", "PRODUCTION", " Production\n"])
def test_environment_production(raw: str) -> None:
    settings = settings_from({"ENVIRONMENT": raw, "DATABASE_URL": URL})
    assert settings.environment == "production"
    assert settings.is_production is True


@pytest.mark.parametrize("raw", ["prod", "staging", "dev", "testing", "1"])
def test_unknown_environment(raw: str) -> None:
    error = error_of({"ENVIRONMENT": raw})
    assert str(error) == f"ENVIRONMENT must be one of development, test, production, got {raw!r}"


# --- booleans: DEBUG and DB_POOL_PRE_PING -------------------------------------------------


TRUE_VALUES = ["true", "TRUE", "True", "1", "yes", "on", " true "]
FALSE_VALUES = ["false", "FALSE", "0", "no", "off", " False "]


@pytest.mark.parametrize("raw", TRUE_VALUES)
def test_debug_true(raw: str) -> None:
    assert settings_from({"DEBUG": raw}).debug is True


@pytest.mark.parametrize("raw", FALSE_VALUES)
def test_debug_false(raw: str) -> None:
    assert settings_from({"DEBUG": raw}).debug is False


@pytest.mark.parametrize("raw", TRUE_VALUES)
def test_pool_pre_ping_true(raw: str) -> None:
    assert settings_from({"DB_POOL_PRE_PING": raw}).pool_pre_ping is True


@pytest.mark.parametrize("raw", FALSE_VALUES)
def test_pool_pre_ping_false(raw: str) -> None:
    assert settings_from({"DB_POOL_PRE_PING": raw}).pool_pre_ping is False


@pytest.mark.parametrize("name", ["DEBUG", "DB_POOL_PRE_PING"])
@pytest.mark.parametrize("raw", ["maybe", "2", "y", "t", "truee", "-1"])
def test_bad_boolean(name: str, raw: str) -> None:
    assert str(error_of({name: raw})) == f"{name} must be true or false, got {raw!r}"


# --- integers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "attribute", "raw", "expected"),
    [
        ("DB_POOL_SIZE", "pool_size", "1", 1),
        ("DB_POOL_SIZE", "pool_size", "20", 20),
        ("DB_POOL_SIZE", "pool_size", " 7 ", 7),
        ("DB_MAX_OVERFLOW", "max_overflow", "0", 0),
        ("DB_MAX_OVERFLOW", "max_overflow", "25", 25),
        ("DB_POOL_RECYCLE", "pool_recycle", "0", 0),
        ("DB_POOL_RECYCLE", "pool_recycle", "3600", 3600),
    ],
)
def test_integer_settings(name: str, attribute: str, raw: str, expected: int) -> None:
    value = getattr(settings_from({name: raw}), attribute)
    assert value == expected
    assert type(value) is int


@pytest.mark.parametrize("raw", ["ten", "0", "-1", "-5", "1.5", "5s", "0x10", "nan"])
def test_bad_pool_size(raw: str) -> None:
    assert str(error_of({"DB_POOL_SIZE": raw})) == (
        f"DB_POOL_SIZE must be a positive integer, got {raw!r}"
    )


def test_pool_size_message_example_from_the_brief() -> None:
    assert str(error_of({"DB_POOL_SIZE": "ten"})) == (
        "DB_POOL_SIZE must be a positive integer, got 'ten'"
    )


@pytest.mark.parametrize("raw", ["-1", "many", "2.5", "1e3", "inf"])
def test_bad_max_overflow(raw: str) -> None:
    assert str(error_of({"DB_MAX_OVERFLOW": raw})) == (
        f"DB_MAX_OVERFLOW must be a non-negative integer, got {raw!r}"
    )


@pytest.mark.parametrize("raw", ["-1", "-3600", "soon", "1800.5", "30m"])
def test_bad_pool_recycle(raw: str) -> None:
    assert str(error_of({"DB_POOL_RECYCLE": raw})) == (
        f"DB_POOL_RECYCLE must be a non-negative number of seconds, got {raw!r}"
    )


# --- seconds: DB_POOL_TIMEOUT and MIGRATE_LOCK_TIMEOUT ------------------------------------


@pytest.mark.parametrize(
    ("name", "attribute"),
    [("DB_POOL_TIMEOUT", "pool_timeout"), ("MIGRATE_LOCK_TIMEOUT", "migrate_lock_timeout")],
)
@pytest.mark.parametrize(
    ("raw", "expected"), [("0.5", 0.5), ("45", 45.0), (" 2.25 ", 2.25), ("1e2", 100.0)]
)
def test_seconds_settings(name: str, attribute: str, raw: str, expected: float) -> None:
    assert getattr(settings_from({name: raw}), attribute) == expected


@pytest.mark.parametrize("name", ["DB_POOL_TIMEOUT", "MIGRATE_LOCK_TIMEOUT"])
@pytest.mark.parametrize(
    "raw",
    ["0", "0.0", "-3", "-0.5", "nan", "NaN", "inf", "-inf", "Infinity", "1e400", "abc", "30s"],
)
def test_bad_seconds(name: str, raw: str) -> None:
    assert str(error_of({name: raw})) == (
        f"{name} must be a positive number of seconds, got {raw!r}"
    )


# --- every bad value: one line, the right variable, the right exception -------------------


BAD_VALUES = [
    ("DATABASE_URL", "mysql://u@h/db"),
    ("DATABASE_URL", "garbage"),
    ("ENVIRONMENT", "staging"),
    ("DEBUG", "sometimes"),
    ("DB_POOL_SIZE", "0"),
    ("DB_MAX_OVERFLOW", "-2"),
    ("DB_POOL_TIMEOUT", "nan"),
    ("DB_POOL_RECYCLE", "-1"),
    ("DB_POOL_PRE_PING", "perhaps"),
    ("DATABASE_DIRECT_URL", "mysql://u@h/db"),
    ("MIGRATE_LOCK_TIMEOUT", "inf"),
]


@pytest.mark.parametrize(("name", "raw"), BAD_VALUES)
def test_every_bad_value_is_one_line_naming_the_variable(name: str, raw: str) -> None:
    error = error_of({name: raw})
    message = str(error)
    assert message.startswith(name + " ")
    assert "\n" not in message
    assert isinstance(error, ProjectError)
    assert error.exit_code == 1


def test_a_value_with_a_newline_is_still_reported_on_one_line() -> None:
    error = error_of({"DB_POOL_SIZE": "1\n2"})
    assert str(error) == "DB_POOL_SIZE must be a positive integer, got '1\\n2'"


# --- the password never shows -------------------------------------------------------------


PASSWORD_CASES = [
    {"DATABASE_URL": f"mysql://app:{PASSWORD}@h/db"},
    {"DATABASE_URL": f"app:{PASSWORD}@h/db"},
    {"DATABASE_URL": f"app:{PASSWORD}@h/db?sslrootcert=https://ca.example.com/root.crt"},
    {"DATABASE_URL": f"postgresql://app:{PASSWORD}@h:port/db"},
    {"DATABASE_URL": f"postgresql://app:{PASSWORD}@h:123456/db"},
    {"DATABASE_URL": f"postgresql://app:{PASSWORD}@h/"},
    {"DATABASE_URL": f"postgresql://app:{PASSWORD}@h"},
    {"DATABASE_URL": f"postgresql://app:{PASSWORD}@/db"},
    {"DATABASE_URL": f"postgresql://app:{PASSWORD}@[::1/db"},
    {"DATABASE_URL": f"postgresql://app@/db?password={PASSWORD}"},
    {"DATABASE_URL": URL, "DATABASE_DIRECT_URL": f"mysql://app:{PASSWORD}@h/db"},
    {"DATABASE_URL": URL, "DATABASE_DIRECT_URL": f"postgresql://app:{PASSWORD}@h:x/db"},
    {"DATABASE_URL": URL, "ENVIRONMENT": "staging"},
    {"DATABASE_URL": URL, "DEBUG": "maybe"},
    {"DATABASE_URL": URL, "DB_POOL_SIZE": "ten"},
    {"DATABASE_URL": URL, "DB_POOL_SIZE": "0"},
    {"DATABASE_URL": URL, "DB_MAX_OVERFLOW": "-1"},
    {"DATABASE_URL": URL, "DB_POOL_TIMEOUT": "nan"},
    {"DATABASE_URL": URL, "DB_POOL_RECYCLE": "-5"},
    {"DATABASE_URL": URL, "DB_POOL_PRE_PING": "sure"},
    {"DATABASE_URL": URL, "MIGRATE_LOCK_TIMEOUT": "inf"},
    {"DATABASE_DIRECT_URL": URL, "ENVIRONMENT": "production"},
]


@pytest.mark.parametrize("values", PASSWORD_CASES)
def test_no_error_shows_the_password(values: dict[str, str]) -> None:
    error = error_of(values)
    assert_no_password(str(error))
    assert_no_password(repr(error))
    assert_no_password("".join(traceback.format_exception(error)))


@pytest.mark.parametrize(
    "values",
    [
        {"DATABASE_URL": URL},
        {"DATABASE_URL": f"postgres://app:{PASSWORD}@/db?host=/tmp"},
        {"DATABASE_URL": URL, "DATABASE_DIRECT_URL": URL.replace("6543", "5432")},
        {"DATABASE_URL": f"postgresql://app@h/db?password={PASSWORD}"},
        {"DATABASE_URL": f"postgresql://:{PASSWORD}@h/db"},
    ],
)
def test_settings_and_urls_never_show_the_password(values: dict[str, str]) -> None:
    settings = settings_from(values)
    assert_no_password(repr(settings))
    assert_no_password(str(settings))
    for url in (settings.database_url, settings.database_direct_url):
        if url is not None:
            assert_no_password(repr(url))
            assert_no_password(str(url))
            assert_no_password(url.render())
            assert PASSWORD in (url.password, url.query_dict.get("password"))


def test_settings_repr_still_describes_the_server() -> None:
    text = repr(settings_from({"DATABASE_URL": URL}))
    assert "db.example.com" in text
    assert "orders" in text


# --- the Settings object ------------------------------------------------------------------


def test_settings_are_frozen() -> None:
    settings = settings_from({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.pool_size = 50  # type: ignore[misc]


def test_env_file_does_not_take_part_in_equality(tmp_path: Path) -> None:
    assert settings_from({}, env_file=tmp_path / "a.env") == settings_from({})
    assert settings_from({}, env_file=tmp_path / "a.env").env_file == tmp_path / "a.env"


def test_every_variable_at_once() -> None:
    settings = settings_from(
        {
            "DATABASE_URL": URL,
            "ENVIRONMENT": "production",
            "DEBUG": "true",
            "DB_POOL_SIZE": "12",
            "DB_MAX_OVERFLOW": "3",
            "DB_POOL_TIMEOUT": "7.5",
            "DB_POOL_RECYCLE": "600",
            "DB_POOL_PRE_PING": "false",
            "DATABASE_DIRECT_URL": "postgresql://app@primary/orders",
            "MIGRATE_LOCK_TIMEOUT": "15",
        }
    )
    assert settings == Settings(
        database_url=DatabaseURL(
            database="orders",
            host="db.example.com",
            port=6543,
            username="app",
            password=PASSWORD,
        ),
        environment="production",
        debug=True,
        pool_size=12,
        max_overflow=3,
        pool_timeout=7.5,
        pool_recycle=600,
        pool_pre_ping=False,
        database_direct_url=DatabaseURL(database="orders", host="primary", username="app"),
        migrate_lock_timeout=15.0,
    )


# --- load_settings ------------------------------------------------------------------------


def test_load_settings_reads_the_given_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "custom.env",
        f"DATABASE_URL={URL}\nENVIRONMENT=test\nDB_POOL_SIZE=9\nDEBUG=true\n",
    )
    settings = load_settings(env_file=path)
    assert settings.database_url == DatabaseURL.parse(URL)
    assert settings.environment == "test"
    assert settings.pool_size == 9
    assert settings.debug is True
    assert settings.env_file == path


def test_load_settings_environment_wins_over_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write(
        tmp_path / ".env", "DB_POOL_SIZE=9\nDEBUG=true\nDATABASE_URL=postgresql://file/db\n"
    )
    monkeypatch.setenv("DB_POOL_SIZE", "3")
    monkeypatch.setenv("DATABASE_URL", "postgresql://env/db")
    settings = load_settings(env_file=path)
    assert settings.pool_size == 3
    assert settings.database_url == DatabaseURL(database="db", host="env")
    # What the environment does not set still comes from the file.
    assert settings.debug is True


def test_load_settings_environment_wins_even_when_blank(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write(tmp_path / ".env", "DB_POOL_SIZE=9\n")
    monkeypatch.setenv("DB_POOL_SIZE", "")
    assert load_settings(env_file=path).pool_size == 5


def test_load_settings_without_a_file_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DB_MAX_OVERFLOW", "0")
    settings = load_settings()
    assert settings.max_overflow == 0
    assert settings.env_file is None


def test_load_settings_uses_the_default_file_when_present(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    default = write(tmp_path / ".env", "DB_POOL_RECYCLE=42\n")
    monkeypatch.setattr(conf, "DEFAULT_ENV_FILE", default)
    settings = load_settings()
    assert settings.pool_recycle == 42
    assert settings.env_file == default


def test_load_settings_missing_default_file_is_fine() -> None:
    assert not conf.DEFAULT_ENV_FILE.exists()
    assert load_settings() == Settings(database_url=None)


def test_load_settings_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.env"
    with pytest.raises(ImproperlyConfigured) as info:
        load_settings(env_file=path)
    assert str(info.value) == f"env file {path} does not exist"


def test_load_settings_bad_value_in_the_file_names_the_variable(tmp_path: Path) -> None:
    path = write(tmp_path / ".env", "DB_POOL_TIMEOUT=forever\n")
    with pytest.raises(ImproperlyConfigured) as info:
        load_settings(env_file=path)
    assert str(info.value) == (
        "DB_POOL_TIMEOUT must be a positive number of seconds, got 'forever'"
    )


def test_load_settings_malformed_file(tmp_path: Path) -> None:
    path = write(tmp_path / ".env", "DEBUG=true\noops no equals here\n")
    with pytest.raises(ImproperlyConfigured, match=r"line 2: expected KEY=value$"):
        load_settings(env_file=path)


def test_load_settings_expands_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PGTEST_PASSWORD", PASSWORD)
    path = write(
        tmp_path / ".env",
        "PGTEST_DB=orders\nDATABASE_URL=postgres://app:${PGTEST_PASSWORD}@h:5432/${PGTEST_DB}\n",
    )
    url = load_settings(env_file=path).database_url
    assert url == DatabaseURL(
        database="orders", host="h", port=5432, username="app", password=PASSWORD
    )


def test_load_settings_bad_url_in_file_hides_the_password(tmp_path: Path) -> None:
    path = write(tmp_path / ".env", f"DATABASE_URL=mysql://app:{PASSWORD}@h/db\n")
    with pytest.raises(ImproperlyConfigured) as info:
        load_settings(env_file=path)
    assert_no_password(str(info.value))
    assert str(info.value).startswith("DATABASE_URL has unsupported scheme 'mysql'")


# --- misspelled settings ------------------------------------------------------------------


def test_misspelled_settings_suggest_the_setting_meant() -> None:
    file_values = {"DATABSE_URL": URL, "SECRET_KEY": PASSWORD, "DEBUG": "true"}
    environ = {
        "DB_POOL_SIZ": "3",
        "DATABSE_DIRECT_URL": URL,
        "PATH": "/usr/bin",
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/bus",
        "DEBIAN_FRONTEND": "noninteractive",
        "DEBUGINFOD_URLS": "https://debuginfod.example.com",
        "DB_POOL_SIZE": "3",
    }
    lines = conf.misspelled_settings(file_values, environ, "prod.env")
    assert lines == [
        "DATABSE_URL in prod.env is not a setting; did you mean DATABASE_URL?",
        "DB_POOL_SIZ in the environment is not a setting; did you mean DB_POOL_SIZE?",
        "DATABSE_DIRECT_URL in the environment is not a setting; did you mean DATABASE_DIRECT_URL?",
    ]
    assert_no_password(" ".join(lines))


def test_misspelled_settings_come_from_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    # A variable added later is covered without touching the check.
    monkeypatch.setattr(conf, "VARIABLES", (*conf.VARIABLES, "API_TOKENS"))
    assert conf.misspelled_settings({}, {"API_TOKEN": "t0ken"}) == [
        "API_TOKEN in the environment is not a setting; did you mean API_TOKENS?"
    ]
    assert conf.misspelled_settings({"API_TOKENS": "t0ken"}, {"API_TOKENS": "t0ken"}) == []


def test_load_settings_warns_once_about_a_misspelled_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(conf, "_warned", set())
    default = write(tmp_path / ".env", f"DATABSE_URL={URL}\nDB_POOL_SIZE=7\n")
    monkeypatch.setattr(conf, "DEFAULT_ENV_FILE", default)
    monkeypatch.setenv("DB_MAX_OVERFLW", "2")
    settings = load_settings()  # a warning, not an error
    assert settings.pool_size == 7
    assert settings.database_url is None
    load_settings()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "Warning: DATABSE_URL in .env is not a setting; did you mean DATABASE_URL?\n"
        "Warning: DB_MAX_OVERFLW in the environment is not a setting; "
        "did you mean DB_MAX_OVERFLOW?\n"
    )
    assert_no_password(captured.err)
    other = write(tmp_path / "other.env", "DB_POOL_RECYCL=5\n")
    load_settings(env_file=other)
    assert capsys.readouterr().err == (
        f"Warning: DB_POOL_RECYCL in {other} is not a setting; did you mean DB_POOL_RECYCLE?\n"
    )


def test_manage_warns_about_a_misspelled_setting(scratch_db: DatabaseURL, tmp_path: Path) -> None:
    from tests.support import run_manage

    url = dataclasses.replace(scratch_db, password=scratch_db.password or PASSWORD)
    env_file = write(tmp_path / "typo.env", f"DATABSE_URL={URL}\n")
    result = run_manage(
        "--env-file",
        str(env_file),
        "showmigrations",
        env={"DATABASE_URL": url.render(hide_password=False), "DB_POOL_SIZ": "3"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[ ] ")
    assert result.stderr.splitlines() == [
        f"Warning: DATABSE_URL in {env_file} is not a setting; did you mean DATABASE_URL?",
        "Warning: DB_POOL_SIZ in the environment is not a setting; did you mean DB_POOL_SIZE?",
    ]
    assert_no_password(result.stdout + result.stderr)


# --- get_settings, use_env_file, override_settings ----------------------------------------


def test_get_settings_is_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    override_settings(None)
    monkeypatch.setenv("DB_POOL_SIZE", "4")
    first = get_settings()
    assert first.pool_size == 4
    monkeypatch.setenv("DB_POOL_SIZE", "8")
    assert get_settings() is first
    assert get_settings().pool_size == 4


def test_override_settings_none_reads_again(monkeypatch: pytest.MonkeyPatch) -> None:
    override_settings(None)
    monkeypatch.setenv("DB_POOL_SIZE", "4")
    first = get_settings()
    monkeypatch.setenv("DB_POOL_SIZE", "8")
    override_settings(None)
    second = get_settings()
    assert second is not first
    assert second.pool_size == 8


def test_override_settings_replaces_them() -> None:
    mine = Settings(database_url=None, environment="test", pool_size=2)
    override_settings(mine)
    assert get_settings() is mine
    assert get_settings().pool_size == 2


def test_use_env_file_switches_the_file_and_forgets_the_cache(tmp_path: Path) -> None:
    override_settings(Settings(database_url=None, pool_size=2))
    path = write(tmp_path / "other.env", "DB_POOL_SIZE=11\nENVIRONMENT=test\n")
    use_env_file(path)
    settings = get_settings()
    assert settings.pool_size == 11
    assert settings.environment == "test"
    assert settings.env_file == path
    assert get_settings() is settings


def test_use_env_file_none_returns_to_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    use_env_file(write(tmp_path / "other.env", "DB_POOL_SIZE=11\n"))
    assert get_settings().pool_size == 11
    default = write(tmp_path / ".env", "DB_POOL_SIZE=6\n")
    monkeypatch.setattr(conf, "DEFAULT_ENV_FILE", default)
    use_env_file(None)
    assert get_settings().pool_size == 6


def test_use_env_file_missing_file_errors_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "absent.env"
    use_env_file(path)
    with pytest.raises(ImproperlyConfigured, match=r"does not exist$"):
        get_settings()


def test_get_settings_error_is_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    override_settings(None)
    monkeypatch.setenv("DB_POOL_SIZE", "zero")
    with pytest.raises(ImproperlyConfigured, match=r"^DB_POOL_SIZE must be a positive integer"):
        get_settings()
    monkeypatch.setenv("DB_POOL_SIZE", "3")
    assert get_settings().pool_size == 3


def test_project_settings_reexports_the_api() -> None:
    from project import settings as project_settings

    assert project_settings.get_settings is get_settings
    assert project_settings.Settings is Settings
    assert isinstance(project_settings.INSTALLED_APPS, list)
    assert all(isinstance(app, str) for app in project_settings.INSTALLED_APPS)
