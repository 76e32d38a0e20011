"""The ``manage.py`` command line: help, errors, ``call_command`` and the app registry.

Exit statuses and stderr are checked on real ``manage.py`` subprocesses; the rest runs
in-process through ``call_command`` and ``main``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import click
import pytest

from project import conf
from project.apps import Apps, apps
from project.db.url import DatabaseURL
from project.exceptions import (
    CommandError,
    ImproperlyConfigured,
    ProjectError,
    describe,
    is_connection_failure,
)
from project.management import (
    app_commands,
    builtin_command_names,
    call_command,
    cli,
    main,
)
from project.management.scaffold import startapp
from tests.support import run_manage, run_python

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "S3cretPw"
# Every variable the settings read: the subprocesses get only what a test sets.
SETTING_VARIABLES = conf.VARIABLES


def manage(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py`` as a real process, off a terminal."""
    return run_manage(*args, env=env, cwd=cwd, timeout=120)


def with_password(url: DatabaseURL) -> DatabaseURL:
    """Return ``url`` carrying a password (ignored by a trust-auth server)."""
    return url if url.password else replace(url, password=PASSWORD)


def assert_error(result: subprocess.CompletedProcess[str], status: int, fragment: str) -> None:
    """Assert the contract's error shape: one ``Error:`` line, the status, no traceback."""
    report = f"status {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert result.returncode == status, report
    assert "Traceback" not in result.stderr, report
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("Error:")]
    if status == 2:  # click's usage errors add a "Usage:" and a "Try ..." line
        assert len(errors) == 1, report
    else:
        assert errors == lines, report
        assert len(lines) == 1, report
    assert fragment in errors[0], report


# --- help ---------------------------------------------------------------------------


def test_builtin_command_names_lists_the_command_files() -> None:
    names = builtin_command_names()
    assert names == sorted(names)
    for expected in ("check", "createdb", "dropdb", "flush", "makemigrations", "migrate"):
        assert expected in names
    assert not any(name.startswith("_") for name in names)


def _every_command() -> list[str]:
    """The built-in commands and the installed apps' commands."""
    return sorted(set(builtin_command_names()) | {n for n in app_commands() if "." not in n})


@pytest.mark.parametrize("command", _every_command())
def test_every_command_has_help(command: str) -> None:
    result = manage(command, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Usage: manage.py {command}")
    assert result.stderr == ""


def test_top_level_help_lists_every_command() -> None:
    result = manage("--help")
    assert result.returncode == 0, result.stderr
    for command in builtin_command_names():
        assert f"  {command} " in result.stdout
    for option in ("--env-file", "--traceback", "--verbose"):
        assert option in result.stdout


_IMPORT_PROBE = """
import json, sys
import click
from project.management import app_commands, builtin_command_names, cli

HEAVY = ("sqlalchemy", "alembic", "asyncpg")
found = {}
names = builtin_command_names() + sorted(n for n in app_commands() if "." not in n)
for args in [["--help"]] + [[name, "--help"] for name in names]:
    try:
        cli.main(args=args, prog_name="manage.py", standalone_mode=False)
    except (SystemExit, click.exceptions.Exit):
        pass
    found[" ".join(args)] = [m for m in HEAVY if m in sys.modules]
print(json.dumps(found))
"""


def test_help_imports_no_database_library() -> None:
    environ = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    result = run_python("-c", _IMPORT_PROBE, env=environ)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["--help"] == []
    assert found == {key: [] for key in found}
    assert len(found) == len(_every_command()) + 1


# --- errors through the real process -------------------------------------------------


@dataclass(frozen=True)
class BadInput:
    """One bad invocation and the error it must give."""

    args: tuple[str, ...]
    status: int
    fragment: str
    env: dict[str, str] = field(default_factory=dict)
    # The DATABASE_URL: "scratch" (with a password), a URL template, or literal text.
    url: str = "scratch"


_SOCKET_FREE = "postgresql+asyncpg://postgres:S3cretPw@127.0.0.1:1/test_nowhere"

BAD_INPUTS: dict[str, BadInput] = {
    "malformed url": BadInput(
        ("showmigrations",), 1, "DATABASE_URL is not a URL", url="postgres:S3cretPw@localhost/db"
    ),
    "unknown scheme": BadInput(
        ("showmigrations",), 1, "unsupported scheme 'mysql'", url="mysql://u:S3cretPw@h/db"
    ),
    "bad port": BadInput(
        ("showmigrations",), 1, "bad port", url="postgresql://u:S3cretPw@localhost:port/db"
    ),
    "no database in url": BadInput(
        ("showmigrations",), 1, "names no database", url="postgresql://u:S3cretPw@localhost"
    ),
    "unreachable host": BadInput(("showmigrations",), 1, "cannot connect", url=_SOCKET_FREE),
    "missing database": BadInput(
        ("showmigrations",),
        1,
        "database \"test_does_not_exist_xyz\" does not exist; create it with 'manage.py createdb'",
        url="{database=test_does_not_exist_xyz}",
    ),
    "unknown user": BadInput(("showmigrations",), 1, "cannot connect", url="{username=nosuchuser}"),
    "unknown revision": BadInput(("migrate", "nope"), 1, "unknown revision 'nope'"),
    "sqlmigrate unknown revision": BadInput(("sqlmigrate", "f00"), 1, "unknown revision 'f00'"),
    "sqlmigrate base": BadInput(("sqlmigrate", "base"), 1, "needs one revision"),
    "unknown command": BadInput(("migrat",), 2, "Did you mean 'migrate'?"),
    "unknown option": BadInput(("migrate", "--nope"), 2, "No such option"),
    "missing argument": BadInput(("sqlmigrate",), 2, "Missing argument"),
    "non-numeric steps": BadInput(("rollback", "--steps", "two"), 2, "'--steps'"),
    "zero steps": BadInput(("rollback", "--steps", "0", "--yes"), 2, "'--steps'"),
    "flush in production": BadInput(
        ("flush", "--yes"), 1, "refusing to delete every row", env={"ENVIRONMENT": "production"}
    ),
    "rollback in production": BadInput(
        ("rollback", "--yes"), 1, "refusing to roll back", env={"ENVIRONMENT": "production"}
    ),
    "rollback with nothing applied": BadInput(("rollback",), 1, "nothing to roll back"),
    "bad DB_POOL_SIZE": BadInput(
        ("showmigrations",), 1, "DB_POOL_SIZE must be a positive integer", {"DB_POOL_SIZE": "x"}
    ),
    "bad ENVIRONMENT": BadInput(
        ("check",), 1, "ENVIRONMENT must be one of", {"ENVIRONMENT": "staging"}
    ),
    "bad DEBUG": BadInput(("check",), 1, "DEBUG must be true or false", {"DEBUG": "maybe"}),
    "bad MIGRATE_LOCK_TIMEOUT": BadInput(
        ("migrate",), 1, "MIGRATE_LOCK_TIMEOUT must be", {"MIGRATE_LOCK_TIMEOUT": "-1"}
    ),
    "malformed env file": BadInput(
        ("--env-file", "{malformed_env}", "showmigrations"), 1, "line 2: expected KEY=value"
    ),
    "missing env file": BadInput(
        ("--env-file", "{missing_env}", "showmigrations"), 1, "does not exist"
    ),
    "startapp digit first": BadInput(("startapp", "1bad"), 1, "invalid app name '1bad'"),
    "startapp shell injection": BadInput(
        ("startapp", "x; rm -rf /"), 1, "invalid app name 'x; rm -rf /'"
    ),
    "startapp keyword": BadInput(("startapp", "class"), 1, "invalid app name 'class'"),
    "startapp existing app": BadInput(("startapp", "existing"), 1, "already exists"),
}


@pytest.fixture(scope="module")
def project_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project with one app, ``existing``: startapp never writes into the repo."""
    root = tmp_path_factory.mktemp("project")
    for name in ("manage.py", "alembic.ini", "pyproject.toml"):
        shutil.copy2(ROOT / name, root / name)
    for name in ("project", "apps", "migrations"):
        shutil.copytree(ROOT / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    startapp("existing", base_dir=root)
    (root / "malformed.env").write_text('GOOD=1\nBROKEN="unterminated\n')
    return root


def _url_for(case: BadInput, scratch: DatabaseURL) -> str:
    secret = with_password(scratch)
    if case.url == "scratch":
        return secret.render(hide_password=False)
    if case.url.startswith("{") and case.url.endswith("}"):
        key, _, value = case.url.strip("{}").partition("=")
        changed = replace(secret, username=value) if key == "username" else secret
        if key == "database":
            changed = changed.with_database(value)
        return changed.render(hide_password=False)
    return case.url


def app_dirs(project: Path) -> list[str]:
    """Return the apps in ``project`` (manage.py may leave a bytecode cache beside them)."""
    return sorted(p.name for p in (project / "apps").iterdir() if p.name != "__pycache__")


@pytest.mark.parametrize("case", list(BAD_INPUTS.values()), ids=list(BAD_INPUTS))
def test_bad_input_gives_one_error_line(
    case: BadInput, scratch_db: DatabaseURL, project_copy: Path
) -> None:
    before = app_dirs(project_copy)
    args = [
        a.format(
            malformed_env=project_copy / "malformed.env",
            missing_env=project_copy / "missing.env",
        )
        for a in case.args
    ]
    env = {"DATABASE_URL": _url_for(case, scratch_db), **case.env}
    result = manage(*args, env=env, cwd=project_copy)
    assert_error(result, case.status, case.fragment)
    assert PASSWORD not in result.stdout
    assert PASSWORD not in result.stderr
    assert app_dirs(project_copy) == before


def test_bad_inputs_table_is_large_enough() -> None:
    assert len(BAD_INPUTS) >= 15


def test_traceback_flag_shows_the_traceback(scratch_db: DatabaseURL) -> None:
    env = {"DATABASE_URL": with_password(scratch_db).render(hide_password=False)}
    result = manage("--traceback", "migrate", "nope", env=env)
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "unknown revision 'nope'" in result.stderr


def test_success_exits_zero(scratch_db: DatabaseURL) -> None:
    env = {"DATABASE_URL": with_password(scratch_db).render(hide_password=False)}
    result = manage("-v", "showmigrations", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("[ ] ")
    assert result.stderr == ""


# --- in-process: call_command, main and describe -------------------------------------


def test_call_command_runs_a_command(
    scratch_db: DatabaseURL, capsys: pytest.CaptureFixture[str]
) -> None:
    call_command("showmigrations")
    assert capsys.readouterr().out.startswith("[ ] ")


def test_call_command_raises_project_errors(scratch_db: DatabaseURL) -> None:
    with pytest.raises(CommandError, match="unknown revision 'nope'"):
        call_command("migrate", "nope")
    with pytest.raises(ProjectError, match="needs one revision"):
        call_command("sqlmigrate", "base")


def test_call_command_raises_usage_errors() -> None:
    with pytest.raises(click.UsageError, match="Did you mean 'migrate'"):
        call_command("migrat")
    with pytest.raises(click.BadParameter):
        call_command("rollback", "--steps", "x")


def test_call_command_destructive_needs_yes_off_a_terminal(
    scratch_db: DatabaseURL, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", _NotATerminal())
    with pytest.raises(CommandError, match="pass --yes"):
        call_command("flush")


class _NotATerminal:
    def isatty(self) -> bool:
        return False


def test_main_prints_one_error_line_and_exits_1(
    scratch_db: DatabaseURL, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["migrate", "nope"])
    assert stopped.value.code == 1
    err = capsys.readouterr().err
    assert err.splitlines() == ["Error: unknown revision 'nope'; see 'manage.py showmigrations'"]


def test_main_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["showmigration"])
    assert stopped.value.code == 2
    assert "Did you mean 'showmigrations'?" in capsys.readouterr().err


def test_main_success_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    assert "Usage: manage.py" in capsys.readouterr().out


def test_dbserver_status(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("dbserver", "status")
    out = capsys.readouterr().out
    assert out == "not running\n" or out.startswith("running: postgresql+asyncpg://")


async def test_a_missing_database_suggests_createdb(db_url: DatabaseURL) -> None:
    import asyncpg

    from project.db import admin as dbadmin

    with pytest.raises(asyncpg.InvalidCatalogNameError) as missing:
        await dbadmin.connect(db_url.with_database("test_no_such_database_here"))
    described = describe(missing.value)
    assert described.startswith("cannot connect to ")
    assert described.endswith(
        'database "test_no_such_database_here" does not exist; '
        "create it with 'manage.py createdb'"
    )
    # createdb itself needs the maintenance database: no advice to run it.
    maintenance = asyncpg.InvalidCatalogNameError('database "postgres" does not exist')
    assert describe(maintenance).endswith('database "postgres" does not exist')


def test_describe_gives_one_line() -> None:
    assert describe(CommandError("nope")) == "nope"
    assert describe(ValueError("first\nsecond")) == "ValueError: first"
    assert describe(RuntimeError()) == "RuntimeError"


# --- the app registry ------------------------------------------------------------------


@pytest.fixture
def fake_apps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApps]:
    """A fresh package on sys.path to hold fake apps; the registry is restored after."""
    package = f"fakeapps_{uuid.uuid4().hex[:8]}"
    (tmp_path / package).mkdir()
    (tmp_path / package / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(cli, "_app_commands", None)
    try:
        yield FakeApps(tmp_path / package, package)
    finally:
        apps.reset()
        for name in [m for m in sys.modules if m == package or m.startswith(f"{package}.")]:
            del sys.modules[name]


@dataclass
class FakeApps:
    """Write fake apps into a package and install them."""

    path: Path
    package: str

    def add(self, label: str, commands: str | None = None, init: str = "") -> str:
        app = self.path / label
        app.mkdir()
        (app / "__init__.py").write_text(textwrap.dedent(init))
        if commands is not None:
            (app / "commands.py").write_text(textwrap.dedent(commands))
        return f"{self.package}.{label}"

    def install(self, *names: str) -> None:
        apps.reset(list(names))
        cli._app_commands = None


def _greeting(name: str, text: str) -> str:
    return f'''
        import click


        @click.command({name!r})
        def greet() -> None:
            """Say hello."""
            click.echo({text!r})
    '''


def test_app_command_joins_the_cli(fake_apps: FakeApps, capsys: pytest.CaptureFixture[str]) -> None:
    fake_apps.install(fake_apps.add("shop", _greeting("greet", "hello from shop")))
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert "  greet " in out
    assert "shop.greet" not in out  # the qualified name works but is not listed
    call_command("greet")
    call_command("shop.greet")
    assert capsys.readouterr().out == "hello from shop\nhello from shop\n"


def test_app_without_commands_module(fake_apps: FakeApps) -> None:
    fake_apps.install(fake_apps.add("plain"))
    assert sorted(cli.list_commands(click.Context(cli))) == builtin_command_names()


def test_two_apps_with_one_command_name(
    fake_apps: FakeApps, capsys: pytest.CaptureFixture[str]
) -> None:
    alpha = fake_apps.add("alpha", _greeting("hello", "alpha says hi"))
    beta = fake_apps.add("beta", _greeting("hello", "beta says hi"))
    fake_apps.install(alpha, beta)
    call_command("alpha.hello")
    call_command("beta.hello")
    call_command("hello")  # the first installed app keeps the plain name
    captured = capsys.readouterr()
    assert captured.out == "alpha says hi\nbeta says hi\nalpha says hi\n"
    warnings = [line for line in captured.err.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1
    assert alpha in warnings[0]
    assert beta in warnings[0]
    assert "'beta.hello'" in warnings[0]


def test_app_command_clashing_with_a_builtin(
    fake_apps: FakeApps, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_apps.install(fake_apps.add("shop", _greeting("startapp", "the shop's startapp")))
    call_command("shop.startapp")
    captured = capsys.readouterr()
    assert captured.out == "the shop's startapp\n"
    assert "clashes with the built-in commands" in captured.err
    command = cli.get_command(click.Context(cli), "startapp")
    assert command is not None
    assert command.callback is not None
    assert command.callback.__module__ == "project.management.commands.startapp"


@pytest.mark.parametrize(
    ("init", "commands", "fragment"),
    [
        ("raise RuntimeError('boom')", None, "app '{app}' failed to import: RuntimeError: boom"),
        ("", "import no_such_module_xyz", "{app}.commands failed to import: ModuleNotFoundError"),
        ("", "raise RuntimeError('bang')", "{app}.commands failed to import: RuntimeError: bang"),
        ("", "def broken(:\n", "{app}.commands failed to import: SyntaxError"),
        (
            "raise ValueError('first\\nsecond')",
            None,
            "app '{app}' failed to import: ValueError: first",
        ),
    ],
    ids=["package", "commands-import", "commands-raises", "commands-syntax", "multi-line"],
)
def test_app_import_failure_is_one_line_naming_it(
    fake_apps: FakeApps,
    capsys: pytest.CaptureFixture[str],
    init: str,
    commands: str | None,
    fragment: str,
) -> None:
    app = fake_apps.add("broken", commands, init=init)
    fake_apps.install(app)
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 1
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("Error: ")
    assert fragment.format(app=app) in lines[0]


def test_unknown_app_is_improperly_configured() -> None:
    with pytest.raises(ImproperlyConfigured, match=r"names 'apps\.nope', which does not exist"):
        Apps(["apps.nope"]).get_app_configs()
    with pytest.raises(ImproperlyConfigured, match=r"does not exist$"):  # nothing close
        Apps(["apps.zzzzzzzzzzzzzzzz"]).get_app_configs()


def test_unknown_app_under_apps_suggests_an_installed_one() -> None:
    from project.settings import INSTALLED_APPS

    if not INSTALLED_APPS:
        pytest.skip("no app is installed to suggest")
    real = INSTALLED_APPS[0]
    with pytest.raises(ImproperlyConfigured, match=f"did you mean '{real}'"):
        Apps([real[:-1]]).get_app_configs()


def test_unknown_app_suggests_a_close_one(fake_apps: FakeApps) -> None:
    shop = fake_apps.add("shop")
    with pytest.raises(ImproperlyConfigured, match=f"did you mean '{shop}'"):
        Apps([f"{shop}p"]).get_app_configs()


@pytest.mark.parametrize("name", ["no_such_pkg_xyz.sub.app", "no_such_pkg_xyz", "json.nope"])
def test_unknown_app_under_a_missing_package(name: str) -> None:
    with pytest.raises(ImproperlyConfigured, match="which does not exist"):
        Apps([name]).get_app_configs()


def test_app_configs_and_labels(fake_apps: FakeApps) -> None:
    shop = fake_apps.add("shop", "")
    registry = Apps([shop])
    [config] = registry.get_app_configs()
    assert config.name == shop
    assert config.label == "shop"
    assert config.path == fake_apps.path / "shop"
    assert config.has_module("commands")
    assert not config.has_module("models")
    assert config.import_module("models") is None
    assert registry.get_app_config("shop") is config
    assert registry.get_app_config(shop) is config
    with pytest.raises(ImproperlyConfigured, match="did you mean 'shop'"):
        registry.get_app_config("shpo")
    registry.load_models()  # no models module: nothing to load, no error


def test_two_apps_with_one_label(fake_apps: FakeApps, tmp_path: Path) -> None:
    first = fake_apps.add("shop")
    other = FakeApps(tmp_path / f"{fake_apps.package}_b", f"{fake_apps.package}_b")
    other.path.mkdir()
    (other.path / "__init__.py").write_text("")
    second = other.add("shop")
    try:
        with pytest.raises(ImproperlyConfigured, match="two apps labelled 'shop'"):
            Apps([first, second]).get_app_configs()
    finally:
        for name in [m for m in sys.modules if m.startswith(other.package)]:
            del sys.modules[name]


def test_registry_defaults_to_installed_apps() -> None:
    from project.settings import INSTALLED_APPS

    assert Apps().installed == list(INSTALLED_APPS)


def test_traceback_is_accepted_anywhere_on_the_line() -> None:
    result = manage("migrate", "nope", "--traceback")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "unknown revision 'nope'" in result.stderr


def test_a_multi_line_project_error_reaches_the_user_as_one_line() -> None:
    from project.exceptions import CommandError

    assert describe(CommandError("first\nsecond\nthird")) == "first"
    assert describe(ValueError("")) == "ValueError"


def test_startapp_refuses_before_writing_anything(tmp_path: Path) -> None:
    from project.exceptions import CommandError

    existing = tmp_path / "tests" / "apps" / "shop" / "test_shop.py"
    existing.parent.mkdir(parents=True)
    existing.write_text("# somebody's tests\n")
    with pytest.raises(CommandError, match=r"test_shop\.py already exists"):
        startapp("shop", base_dir=tmp_path)
    assert existing.read_text() == "# somebody's tests\n"
    assert not (tmp_path / "apps").exists()
    written = startapp("cart", base_dir=tmp_path)
    assert tmp_path / "tests" / "apps" / "cart" / "__init__.py" in written
    assert (tmp_path / "apps" / "cart" / "models.py").exists()


async def test_a_refused_connection_is_a_connection_error_but_a_file_error_is_not(
    db_url: DatabaseURL, tmp_path: Path
) -> None:
    from project.db import admin as dbadmin

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConnectionRefusedError) as refused:
        await dbadmin.connect(DatabaseURL.parse(f"postgresql://u@127.0.0.1:{port}/x"), timeout=5)
    assert is_connection_failure(refused.value)
    assert describe(refused.value).startswith("cannot connect to ")
    with pytest.raises(FileNotFoundError) as unwritable:
        (tmp_path / "missing" / "out.json").open("w")
    assert not is_connection_failure(unwritable.value)
    assert describe(unwritable.value).startswith("FileNotFoundError: ")
