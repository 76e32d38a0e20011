"""``manage.py shell``: real processes, on a pseudo-terminal where a terminal is needed.

Rows are written only to a table each test makes in its scratch database, so the tests
hold whatever the installed apps are.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from project import conf
from project.apps import apps
from project.db import admin as dbadmin
from project.db.url import DatabaseURL
from project.models import Base
from project.shell.namespace import SQL_NAMES
from tests.support import run_python

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "S3cretPw"
TIMEOUT = 60.0
SETTING_VARIABLES = conf.VARIABLES
ALWAYS = ("Base", "settings", "engine", "session", *SQL_NAMES, "asyncio", "tb")
DOWN_URL = f"postgresql+asyncpg://postgres:{PASSWORD}@127.0.0.1:1/test_nowhere"
INSERT = 'await session.execute(text("insert into shell_probe values (1)"))'
COUNT = 'await session.scalar(text("select count(*) from shell_probe"))'
MISSING = 'await session.execute(text("select * from no_such_table"))'
# The driver's own error, named as the CLI names it (describe()), not SQLAlchemy's wrapper.
REFUSED = 'UndefinedTableError: relation "no_such_table" does not exist\n'


def environment(url: DatabaseURL | str, home: Path, **extra: str) -> dict[str, str]:
    """Return the environment of a shell on ``url``, with its history under ``home``."""
    env = {k: v for k, v in os.environ.items() if k not in SETTING_VARIABLES}
    rendered = url if isinstance(url, str) else url.render(hide_password=False)
    env.update(DATABASE_URL=rendered, HOME=str(home), IPYTHONDIR=str(home / ".ipython"))
    env.update(TERM="dumb", **extra)
    return env


def shell(*args: str, env: Mapping[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run ``manage.py shell ARGS`` off a terminal, ``stdin`` as its input."""
    return python("manage.py", "shell", *args, env=env, stdin=stdin)


def python(*args: str, env: Mapping[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run ``python ARGS`` in the project off a terminal, ``stdin`` as its input."""
    return run_python(*args, env=env, stdin=stdin, timeout=TIMEOUT)


def _take_terminal() -> None:
    # The pseudo-terminal becomes the child's controlling terminal, so ^C is SIGINT.
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class Terminal:
    """A process on a pseudo-terminal: type lines, wait for text."""

    def __init__(self, args: list[str], env: Mapping[str, str]) -> None:
        self.fd, child = pty.openpty()
        self.process = subprocess.Popen(
            args,
            cwd=ROOT,
            env=env,
            stdin=child,
            stdout=child,
            stderr=child,
            preexec_fn=_take_terminal,
        )
        os.close(child)
        self.output = ""
        self._seen = 0

    def expect(self, text: str, timeout: float = TIMEOUT) -> str:
        """Wait for ``text`` after what the last expect() consumed; return what came."""
        deadline = time.monotonic() + timeout
        while text not in self.output[self._seen :]:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.fd], [], [], max(remaining, 0))
            if not ready:
                raise AssertionError(f"waited for {text!r}; the terminal shows:\n{self.output}")
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:  # the process ended and closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"ended before {text!r}; the terminal shows:\n{self.output}")
            self.output += chunk.decode(errors="replace").replace("\r\n", "\n")
        end = self.output.index(text, self._seen) + len(text)
        seen, self._seen = self._seen, end
        return self.output[seen:end]

    def type(self, line: str, *, prompt: str = ">>> ") -> str:
        """Type ``line`` and Enter; return the output up to the next prompt."""
        os.write(self.fd, line.encode() + b"\n")
        return self.expect(prompt)

    def send(self, data: bytes) -> None:
        """Send raw bytes (control keys)."""
        os.write(self.fd, data)

    def hang_up(self) -> None:
        """Close the terminal, as when its window is closed (the kernel sends SIGHUP)."""
        os.close(self.fd)
        self.fd = -1

    def wait(self) -> int:
        """Wait for the process to end, reading what it still prints; return its status."""
        deadline = time.monotonic() + TIMEOUT
        while self.fd >= 0 and self.process.poll() is None and time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    chunk = b""
                self.output += chunk.decode(errors="replace").replace("\r\n", "\n")
        status = self.process.wait(timeout=TIMEOUT)
        # What it printed just before it ended is still in the terminal's buffer.
        while self.fd >= 0 and select.select([self.fd], [], [], 0)[0]:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.output += chunk.decode(errors="replace").replace("\r\n", "\n")
        return status

    def close(self) -> None:
        """Kill the process if it still runs, and close the terminal."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.fd >= 0:
            os.close(self.fd)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    """Collect the terminals a test opens; close them all after it."""
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()


@dataclass
class Probe:
    """A scratch database with table ``shell_probe`` and a home for the shell's history."""

    url: DatabaseURL
    home: Path

    @property
    def env(self) -> dict[str, str]:
        return environment(self.url, self.home)

    def count(self) -> int:
        """Return the rows in ``shell_probe``, read on a connection of its own."""

        async def count() -> int:
            conn = await dbadmin.connect(self.url)
            try:
                return int(await conn.fetchval("SELECT count(*) FROM shell_probe"))
            finally:
                await conn.close()

        return asyncio.run(count())


@pytest.fixture
def probe(scratch_db: DatabaseURL, tmp_path: Path) -> Probe:
    """Return a scratch database holding an empty table ``shell_probe``."""

    async def create() -> None:
        conn = await dbadmin.connect(scratch_db)
        try:
            await conn.execute("CREATE TABLE shell_probe (id int)")
        finally:
            await conn.close()

    asyncio.run(create())
    return Probe(scratch_db, tmp_path)


def open_shell(
    terminals: list[Terminal], env: Mapping[str, str], *args: str, prompt: str = ">>> "
) -> Terminal:
    """Start ``manage.py shell ARGS`` on a terminal and wait for its prompt."""
    terminal = Terminal([sys.executable, "manage.py", "shell", *args], env)
    terminals.append(terminal)
    terminal.expect(prompt)
    return terminal


def installed_model_names() -> list[str]:
    """Return the class names of the installed apps' models."""
    apps.load_models()
    packages = tuple(f"{config.name}." for config in apps.get_app_configs())
    return sorted(
        mapper.class_.__name__
        for mapper in Base.registry.mappers
        if mapper.class_.__module__.startswith(packages)
    )


# --- -c and scripts on stdin -------------------------------------------------------


def test_command_runs_await_and_exits_0(db_url: DatabaseURL, tmp_path: Path) -> None:
    result = shell(
        "-c", 'print(await session.scalar(text("select 6 * 7")))', env=environment(db_url, tmp_path)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "42\n"
    assert result.stderr == ""


def test_command_that_raises_prints_the_traceback_and_exits_1(
    db_url: DatabaseURL, tmp_path: Path
) -> None:
    code = 'x = await session.scalar(text("select 1"))\nx / 0'
    result = shell("-c", code, env=environment(db_url, tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert '  File "<string>", line 2, in <module>\n    x / 0\n' in result.stderr
    assert result.stderr.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "project/shell/" not in result.stderr  # the shell's own frames are left out


@pytest.mark.parametrize(
    ("code", "status", "stderr"),
    [
        ("exit()", 0, ""),
        ("exit(3)", 3, ""),
        ("raise SystemExit('bye')", 1, "bye\n"),
        ("x = (", 1, "SyntaxError: '(' was never closed"),
    ],
)
def test_command_exit_statuses(
    db_url: DatabaseURL, tmp_path: Path, code: str, status: int, stderr: str
) -> None:
    result = shell("-c", code, env=environment(db_url, tmp_path))
    assert result.returncode == status, result.stderr
    assert stderr in result.stderr if stderr else result.stderr == ""


def test_script_on_stdin_runs(probe: Probe) -> None:
    script = textwrap.dedent(
        """
        print(await session.scalar(select(func.count()).select_from(text("shell_probe"))))
        await session.execute(text("insert into shell_probe values (1), (2)"))
        await session.commit()
        print(await session.scalar(select(func.count()).select_from(text("shell_probe"))))
        """
    )
    result = shell(env=probe.env, stdin=script)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "0\n2\n"
    assert probe.count() == 2  # outside --sandbox, commit() commits


def test_script_on_stdin_that_raises_exits_1(db_url: DatabaseURL, tmp_path: Path) -> None:
    result = shell(env=environment(db_url, tmp_path), stdin="print('before')\n{}['missing']\n")
    assert result.returncode == 1
    assert result.stdout == "before\n"
    assert '  File "<stdin>", line 2, in <module>' in result.stderr
    assert "KeyError: 'missing'" in result.stderr


def test_passwords_never_show_in_a_traceback(db_url: DatabaseURL, tmp_path: Path) -> None:
    url = db_url if db_url.password else replace(db_url, password=PASSWORD)
    code = "raise RuntimeError(settings.database_url.password)"
    result = shell("-c", code, env=environment(url, tmp_path))
    assert result.returncode == 1
    assert "RuntimeError: ***" in result.stderr
    assert str(url.password) not in result.stderr


# --- the names ---------------------------------------------------------------------


_PRESENT = """
import json
from project.apps import apps
from project.factories import AsyncFactory
from project.models import Base

apps.load_models()
expected = {expected} + [m.class_.__name__ for m in Base.registry.mappers]
for config in apps.get_app_configs():
    module = config.import_module("factories")
    expected += [
        v.__name__ for v in vars(module or object()).values()
        if isinstance(v, type) and issubclass(v, AsyncFactory) and v.__module__ == module.__name__
    ]
missing = []
for name in expected:
    try:
        eval(name)
    except NameError:
        missing.append(name)
print(json.dumps({{
    "expected": sorted(expected),
    "missing": missing,
    "types": [type(session).__name__, type(engine).__name__, type(settings).__name__],
    "base": Base is __import__("project.models").models.Base,
}}))
"""


def test_every_preloaded_name_is_present(db_url: DatabaseURL, tmp_path: Path) -> None:
    code = _PRESENT.format(expected=json.dumps(list(ALWAYS)))
    result = shell("-c", code, env=environment(db_url, tmp_path))
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["missing"] == []
    assert set(ALWAYS) | set(installed_model_names()) <= set(found["expected"])
    assert found["types"] == ["AsyncSession", "AsyncEngine", "Settings"]
    assert found["base"] is True


def test_no_imports_loads_nothing(db_url: DatabaseURL, tmp_path: Path) -> None:
    code = "print(sorted(k for k in globals() if not k.startswith('__')))\nsession"
    result = shell("--no-imports", "-c", code, env=environment(db_url, tmp_path))
    assert result.returncode == 1
    assert result.stdout == "[]\n"
    assert "NameError: name 'session' is not defined" in result.stderr


def test_verbose_lists_each_name_and_its_origin(db_url: DatabaseURL, tmp_path: Path) -> None:
    env = environment(db_url, tmp_path)
    for args in (["-v", "shell"], ["shell", "-v"]):
        result = python("manage.py", *args, "-c", "pass", env=env)
        assert result.returncode == 0, result.stderr
        rows = {line.split()[0]: line for line in result.stderr.splitlines()}
        assert set(ALWAYS) | set(installed_model_names()) <= set(rows)
        assert rows["select"].split()[-1] == "sqlalchemy"
        assert "project.models" in rows["Base"]
        assert "first use" in rows["engine"]


_CLASH_APP = """
from sqlalchemy.orm import Mapped, mapped_column
from project.models import Base


class Widget(Base):
    __tablename__ = "{label}_widget"
    name: Mapped[str] = mapped_column()
"""

_CLASH_FACTORIES = """
from project.factories import AsyncFactory
from {label}.models import Widget


class WidgetFactory(AsyncFactory[Widget]):
    class Meta:
        model = Widget
"""

_CLASH_RUN = """
import sys
from project.apps import apps
from project.management import main

apps.reset(["clash_a", "clash_b"])
main(sys.argv[1:])
"""


def test_a_name_clash_is_reported_and_both_stay_reachable(
    db_url: DatabaseURL, tmp_path: Path
) -> None:
    for label in ("clash_a", "clash_b"):
        package = tmp_path / label
        package.mkdir()
        (package / "__init__.py").write_text("")
        (package / "models.py").write_text(_CLASH_APP.format(label=label))
        (package / "factories.py").write_text(_CLASH_FACTORIES.format(label=label))
    code = textwrap.dedent(
        """
        import sys
        print(Widget.__module__, clash_a.Widget.__module__, clash_b.Widget.__module__)
        print("factory_boy" if "factory" in sys.modules else "no factory_boy yet")
        from project.factories import current_session
        print(WidgetFactory._meta.model is clash_a.Widget)
        print(clash_b.WidgetFactory._meta.model is clash_b.Widget)
        print(current_session() is session, WidgetFactory.build(name="w").name)
        """
    )
    env = environment(db_url, tmp_path, PYTHONPATH=f"{ROOT}{os.pathsep}{tmp_path}")
    result = python("-c", _CLASH_RUN, "shell", "-c", code, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "clash_a.models clash_a.models clash_b.models",
        "no factory_boy yet",  # factories are imported on first use
        "True",
        "True",
        "True w",  # and write through the shell's session
    ]
    warnings = result.stderr.splitlines()
    assert len(warnings) == 2, result.stderr
    assert warnings[0].startswith("Warning: model Widget from clash_b.models clashes")
    assert warnings[0].endswith("; use clash_b.Widget")
    assert warnings[1].startswith("Warning: factory WidgetFactory from clash_b.factories")


# --- the interactive REPL ------------------------------------------------------------


def test_top_level_await_across_lines_on_one_loop_and_session(
    db_url: DatabaseURL, tmp_path: Path, terminals: list[Terminal]
) -> None:
    terminal = open_shell(terminals, environment(db_url, tmp_path))
    terminal.type("loop = asyncio.get_running_loop()")
    terminal.type('n = await session.scalar(text("select 40"))')
    terminal.type('pid = await session.scalar(text("select pg_backend_pid()"))')
    terminal.type('n += await session.scalar(text("select 2"))')
    out = terminal.type("print('answer', n)")
    assert "answer 42\n" in out
    out = terminal.type(
        "print(asyncio.get_running_loop() is loop, "
        'pid == await session.scalar(text("select pg_backend_pid()")))'
    )
    assert "True True\n" in out  # the same loop, and the session kept its connection
    terminal.send(b"\x04")  # Ctrl-D
    assert terminal.wait() == 0


def test_an_error_prints_its_traceback_and_the_shell_goes_on(
    db_url: DatabaseURL, tmp_path: Path, terminals: list[Terminal]
) -> None:
    terminal = open_shell(terminals, environment(db_url, tmp_path))
    out = terminal.type(MISSING)
    assert 'relation "no_such_table" does not exist' in out
    out = terminal.type("1 / 0")
    assert "Traceback (most recent call last):" in out
    assert 'File "<console>", line 1, in <module>' in out
    assert "ZeroDivisionError" in out
    assert "project/shell/" not in out
    await_line = 'await session.rollback(); print(await session.scalar(text("select 7")))'
    assert "7\n" in terminal.type(await_line)
    terminal.send(b"\x04")
    assert terminal.wait() == 0


def test_ctrl_c_cancels_the_running_await(
    db_url: DatabaseURL, tmp_path: Path, terminals: list[Terminal]
) -> None:
    terminal = open_shell(terminals, environment(db_url, tmp_path))
    os.write(terminal.fd, b"await asyncio.sleep(60)\n")
    terminal.expect("await asyncio.sleep(60)\n")
    time.sleep(0.5)
    terminal.send(b"\x03")
    assert "KeyboardInterrupt" in terminal.expect(">>> ", timeout=10)
    assert "still here\n" in terminal.type("print('still here')")
    terminal.send(b"\x04")
    assert terminal.wait() == 0


def test_banner_names_the_database_without_its_password(
    db_url: DatabaseURL, tmp_path: Path, terminals: list[Terminal]
) -> None:
    url = db_url if db_url.password else replace(db_url, password=PASSWORD)
    terminal = open_shell(terminals, environment(url, tmp_path))
    banner = terminal.output
    assert "asyncio REPL" in banner
    assert f"Database: {url.render()}\n" in banner
    assert str(url.password) not in banner
    assert "Also:" in banner
    assert "session" in banner
    assert "SANDBOX" not in banner
    for model in installed_model_names():
        assert model in banner


def test_no_imports_banner(db_url: DatabaseURL, tmp_path: Path, terminals: list[Terminal]) -> None:
    terminal = open_shell(terminals, environment(db_url, tmp_path), "--no-imports")
    assert "Nothing loaded (--no-imports)." in terminal.output


def test_tab_completion_and_history(
    db_url: DatabaseURL, tmp_path: Path, terminals: list[Terminal]
) -> None:
    terminal = open_shell(terminals, environment(db_url, tmp_path))
    terminal.send(b"sessi\t")
    terminal.expect("session")
    assert "<sqlalchemy.ext.asyncio.session.AsyncSession object" in terminal.type("")
    terminal.send(b"eng\t")  # engine: created on first use, completed all the same
    terminal.expect("engine")
    assert "<sqlalchemy.ext.asyncio.engine.AsyncEngine object" in terminal.type("")
    terminal.type("marker = 'in the history'")
    terminal.send(b"\x04")
    assert terminal.wait() == 0
    history = (tmp_path / ".pastetrader_history").read_text()
    assert "marker = 'in the history'" in history


def test_starts_with_the_database_down_and_says_so_on_first_use(
    tmp_path: Path, terminals: list[Terminal]
) -> None:
    terminal = open_shell(terminals, environment(DOWN_URL, tmp_path))
    assert "Database: postgresql+asyncpg://postgres:***@127.0.0.1:1/test_nowhere" in (
        terminal.output
    )
    out = terminal.type('await session.execute(text("select 1"))')
    assert "The database is unavailable: cannot connect to" in out
    assert PASSWORD not in out
    assert "42\n" in terminal.type("print(6 * 7)")
    terminal.send(b"\x04")
    assert terminal.wait() == 0


def test_command_with_the_database_down_says_so(tmp_path: Path) -> None:
    result = shell(
        "-c", 'await session.execute(text("select 1"))', env=environment(DOWN_URL, tmp_path)
    )
    assert result.returncode == 1
    assert "The database is unavailable: cannot connect to" in result.stderr
    assert "asyncpg/" not in result.stderr  # the driver's frames are left out
    assert PASSWORD not in result.stderr


# --- --sandbox -----------------------------------------------------------------------


def test_sandbox_commit_is_a_savepoint_and_an_error_in_c_rolls_back(probe: Probe) -> None:
    code = textwrap.dedent(
        f"""
        from project.db import session_scope
        {INSERT}
        await session.commit()
        async with session_scope() as other:
            await other.execute(text("insert into shell_probe values (2)"))
        print({COUNT})
        raise RuntimeError("boom")
        """
    )
    result = shell("--sandbox", "-c", code, env=probe.env)
    assert result.returncode == 1
    assert result.stdout == "2\n"  # both writes are visible inside the sandbox
    assert "RuntimeError: boom" in result.stderr
    assert result.stderr.rstrip().endswith("Sandbox: rolled back.")
    assert probe.count() == 0


def test_sandbox_rolls_back_after_a_stdin_script(probe: Probe) -> None:
    result = shell("--sandbox", env=probe.env, stdin=f"{INSERT}\nawait session.commit()\n")
    assert result.returncode == 0, result.stderr
    assert "Sandbox: rolled back." in result.stderr
    assert probe.count() == 0


@pytest.mark.parametrize(
    "ending", ["eof", "exit", "exit-in-await", "sigterm", "sigterm-at-prompt", "hang-up"]
)
def test_sandbox_leaves_no_row_however_the_shell_ends(
    probe: Probe, terminals: list[Terminal], ending: str
) -> None:
    prompt = "[sandbox] >>> "
    terminal = open_shell(terminals, probe.env, "--sandbox", prompt=prompt)
    assert "SANDBOX" in terminal.output
    terminal.type(INSERT, prompt=prompt)
    terminal.type("await session.commit()", prompt=prompt)
    assert "1\n" in terminal.type(f"print({COUNT})", prompt=prompt)
    assert probe.count() == 0  # not even committed, seen from outside
    expected = 0
    if ending == "eof":
        terminal.send(b"\x04")
    elif ending == "exit":
        terminal.send(b"exit()\n")
    elif ending == "exit-in-await":
        terminal.send(b"await asyncio.sleep(0); exit(4)\n")
        expected = 4
    elif ending == "sigterm":
        terminal.send(b"await asyncio.sleep(60)\n")
        terminal.expect("await asyncio.sleep(60)\n")
        time.sleep(0.5)
        terminal.process.send_signal(signal.SIGTERM)
        expected = 128 + signal.SIGTERM
    elif ending == "sigterm-at-prompt":
        terminal.process.send_signal(signal.SIGTERM)
        expected = 128 + signal.SIGTERM
    else:
        terminal.hang_up()
        expected = 128 + signal.SIGHUP
    assert terminal.wait() == expected
    if ending != "hang-up":  # else nobody is left to read it
        assert "Sandbox: rolled back." in terminal.output
    assert probe.count() == 0


def test_sigterm_during_c_rolls_back(probe: Probe) -> None:
    code = f"{INSERT}\nawait session.commit()\nprint('ready', flush=True)\nawait asyncio.sleep(60)"
    process = subprocess.Popen(
        [sys.executable, "manage.py", "shell", "--sandbox", "-c", code],
        cwd=ROOT,
        env=probe.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
        assert ready
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 128 + signal.SIGTERM
    assert stderr == "Sandbox: rolled back.\n"
    assert probe.count() == 0


def test_sandbox_needs_the_database(tmp_path: Path) -> None:
    result = shell("--sandbox", "-c", "pass", env=environment(DOWN_URL, tmp_path))
    assert result.returncode == 1
    assert result.stderr.startswith("Error: --sandbox needs the database: cannot connect")
    assert len(result.stderr.splitlines()) == 1
    assert PASSWORD not in result.stderr


# --- a failed statement, and leaving with changes --------------------------------------


def error_lines(out: str) -> list[str]:
    """Return what a line typed at the prompt printed: without its echo and the next prompt."""
    return out.splitlines()[1:-1]


def test_a_failed_statement_rolls_the_session_back_in_one_short_report(
    probe: Probe, terminals: list[Terminal]
) -> None:
    terminal = open_shell(terminals, probe.env)
    terminal.type(INSERT)
    out = terminal.type(MISSING)
    assert error_lines(out) == [
        '  File "<console>", line 1, in <module>',  # the console keeps no source to show
        REFUSED.rstrip(),
        "The session was rolled back: its uncommitted changes are gone.",
        "(tb() shows the full traceback.)",
    ]
    assert "0\n" in terminal.type(f"print({COUNT})")  # no "current transaction is aborted"
    out = terminal.type("tb()")
    assert "Traceback (most recent call last):" in out
    assert "The above exception was the direct cause of the following exception:" in out
    assert "asyncpg.exceptions.UndefinedTableError" in out
    assert "project/shell/" not in out
    out = terminal.type(MISSING)
    assert "tb()" not in out  # said once is enough
    terminal.send(b"\x04")
    assert terminal.wait() == 0
    assert "uncommitted" not in terminal.output[terminal.output.rindex(">>> ") :]


def test_a_caught_error_still_gets_the_session_rolled_back(
    db_url: DatabaseURL, tmp_path: Path, terminals: list[Terminal]
) -> None:
    terminal = open_shell(terminals, environment(db_url, tmp_path))
    terminal.type(f"try: {MISSING}", prompt="... ")
    terminal.type("except Exception: print('caught')", prompt="... ")
    out = terminal.type("")
    assert "caught\n" in out
    assert "The session was rolled back: its uncommitted changes are gone.\n" in out
    assert "7\n" in terminal.type('print(await session.scalar(text("select 7")))')
    terminal.send(b"\x04")
    assert terminal.wait() == 0


def test_a_failed_flush_rolls_the_session_back(probe: Probe, terminals: list[Terminal]) -> None:
    terminal = open_shell(terminals, probe.env)
    terminal.type("from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column")
    terminal.type("class Scratch(DeclarativeBase): pass", prompt="... ")
    terminal.type("")
    terminal.type("class Row(Scratch):", prompt="... ")
    terminal.type("    __tablename__ = 'shell_keyed'", prompt="... ")
    terminal.type("    id: Mapped[int] = mapped_column(primary_key=True)", prompt="... ")
    terminal.type("")
    terminal.type('await session.execute(text("create table shell_keyed (id int primary key)"))')
    terminal.type("session.add_all([Row(id=1), Row(id=1)])")  # the same key twice
    out = terminal.type("await session.flush()")
    assert "UniqueViolationError: duplicate key value violates unique constraint" in out
    assert "DETAIL:  Key (id)=(1) already exists." in out
    assert "The session was rolled back: its uncommitted changes are gone.\n" in out
    assert len(error_lines(out)) < 7
    assert "1\n" in terminal.type('print(await session.scalar(text("select 1")))')
    terminal.send(b"\x04")
    assert terminal.wait() == 0


def test_a_database_error_in_c_is_short_unless_traceback(probe: Probe) -> None:
    result = shell("-c", f"{INSERT}\n{MISSING}", env=probe.env)
    assert result.returncode == 1
    assert result.stderr == (
        '  File "<string>", line 2, in <module>\n'
        f"    {MISSING}\n"
        f"{REFUSED}"
        "The session was rolled back: its uncommitted changes are gone.\n"
        "manage.py --traceback shell shows the full traceback.\n"
    )
    result = python("manage.py", "--traceback", "shell", "-c", MISSING, env=probe.env)
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):\n")
    assert "The above exception was the direct cause of the following exception:" in (result.stderr)
    assert "sqlalchemy/engine/" in result.stderr
    assert "project/shell/" not in result.stderr


async def test_a_database_error_shows_as_describes_line_and_the_servers_hint(
    db_engine: AsyncEngine,
) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from project.exceptions import DatabaseUnavailable
    from project.shell.tracebacks import database_note, sql_error

    async with db_engine.connect() as connection:
        with pytest.raises(DBAPIError) as refused:
            await connection.execute(text("select no_such_function()"))
    assert sql_error(refused.value) == (
        "UndefinedFunctionError: function no_such_function() does not exist\n"
        "HINT:  No function matches the given name and argument types. "
        "You might need to add explicit type casts."
    )
    assert database_note(refused.value) is None
    assert sql_error(ZeroDivisionError("x")) is None
    down = DatabaseUnavailable("the embedded PostgreSQL did not become ready\nlog: ...")
    assert database_note(down) == (
        "The database is unavailable: the embedded PostgreSQL did not become ready"
    )
    assert sql_error(down) is None


def test_sandbox_a_failed_line_is_undone_alone(probe: Probe, terminals: list[Terminal]) -> None:
    prompt = "[sandbox] >>> "
    undone = "The sandbox was rolled back to the start of this line; earlier lines' work is kept."
    terminal = open_shell(terminals, probe.env, "--sandbox", prompt=prompt)
    terminal.type(INSERT, prompt=prompt)  # the session's transaction stays open
    second = 'await session.execute(text("insert into shell_probe values (2)"))'
    out = terminal.type(f"_ = {second}; {MISSING}", prompt=prompt)
    assert REFUSED in out
    assert f"{undone}\n" in out
    assert len(error_lines(out)) < 6
    assert "1\n" in terminal.type(f"print({COUNT})", prompt=prompt)  # row 1 stays, 2 is gone
    terminal.type("await session.commit()", prompt=prompt)
    # With the session idle, the line's savepoint is the connection's.
    third = 'await connection.execute(text("insert into shell_probe values (3)"))'
    out = terminal.type(
        f"_ = {third}; await connection.execute(text('select nope'))", prompt=prompt
    )
    assert f"{undone}\n" in out
    assert "1\n" in terminal.type(f"print({COUNT})", prompt=prompt)
    terminal.type(
        'await session.execute(text("insert into shell_probe values (4)"))', prompt=prompt
    )
    assert "2\n" in terminal.type(f"print({COUNT})", prompt=prompt)
    assert probe.count() == 0
    terminal.send(b"\x04")
    assert terminal.wait() == 0
    ending = terminal.output[terminal.output.rindex(prompt) :]
    assert "Sandbox: rolled back." in ending
    assert "uncommitted" not in ending  # the sandbox's own report says it
    assert probe.count() == 0


def test_sandbox_a_failed_flush_undoes_its_line_alone(
    probe: Probe, terminals: list[Terminal]
) -> None:
    prompt = "[sandbox] >>> "
    terminal = open_shell(terminals, probe.env, "--sandbox", prompt=prompt)
    terminal.type(
        "from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column", prompt=prompt
    )
    terminal.type("class Scratch(DeclarativeBase): pass", prompt="... ")
    terminal.type("", prompt=prompt)
    terminal.type("class Row(Scratch):", prompt="... ")
    terminal.type("    __tablename__ = 'shell_keyed'", prompt="... ")
    terminal.type("    id: Mapped[int] = mapped_column(primary_key=True)", prompt="... ")
    terminal.type("", prompt=prompt)
    terminal.type(
        'await session.execute(text("create table shell_keyed (id int primary key)"))',
        prompt=prompt,
    )
    terminal.type("session.add(Row(id=1))", prompt=prompt)
    out = terminal.type("session.add(Row(id=1)); session.add(Row(id=2))", prompt=prompt)
    # The line's changes are flushed as it ends, so the line that made the clash is undone.
    assert "UniqueViolationError: duplicate key value violates unique constraint" in out
    assert "The sandbox was rolled back to the start of this line" in out
    count = 'await session.scalar(text("select count(*) from shell_keyed"))'
    assert "1\n" in terminal.type(f"print({count})", prompt=prompt)
    terminal.send(b"\x04")
    assert terminal.wait() == 0
    assert "Sandbox: rolled back." in terminal.output


def test_sandbox_starts_over_when_its_connection_is_lost(
    probe: Probe, terminals: list[Terminal]
) -> None:
    prompt = "[sandbox] >>> "
    terminal = open_shell(terminals, probe.env, "--sandbox", prompt=prompt)
    terminal.type(INSERT, prompt=prompt)
    os.write(terminal.fd, b'await session.execute(text("select pg_sleep(60)"))\n')
    terminal.expect('pg_sleep(60)"))\n')
    time.sleep(0.5)
    terminal.send(b"\x03")  # SQLAlchemy drops a connection whose query was cancelled
    out = terminal.expect(prompt, timeout=20)
    assert "the sandbox starts again, empty." in out
    assert "0\n" in terminal.type(f"print({COUNT})", prompt=prompt)
    terminal.type(INSERT, prompt=prompt)
    assert "1\n" in terminal.type(f"print({COUNT})", prompt=prompt)
    terminal.send(b"\x04")
    assert terminal.wait() == 0
    assert "Sandbox: rolled back." in terminal.output
    assert probe.count() == 0


def test_leaving_with_uncommitted_changes_asks_first(
    probe: Probe, terminals: list[Terminal]
) -> None:
    question = "Leave anyway? [y/N] "
    terminal = open_shell(terminals, probe.env)
    terminal.type(INSERT)
    terminal.send(b"\x04")
    out = terminal.expect(question)
    assert "Warning: the session has uncommitted changes; leaving rolls them back" in out
    terminal.type("n")  # stay
    assert "1\n" in terminal.type(f"print({COUNT})")
    os.write(terminal.fd, b"exit(5)\n")
    terminal.expect(question)
    os.write(terminal.fd, b"y\n")
    assert terminal.wait() == 5
    assert "rolled back" not in terminal.output.rsplit(question, 1)[1]  # asked, not told again
    assert probe.count() == 0


def test_leaving_a_script_with_uncommitted_changes_says_they_were_dropped(probe: Probe) -> None:
    result = shell("-c", INSERT, env=probe.env)
    assert result.returncode == 0
    assert result.stderr == (
        "Warning: the session's uncommitted changes were rolled back "
        "(await session.commit() keeps them).\n"
    )
    assert probe.count() == 0
    result = shell(env=probe.env, stdin=f"{INSERT}\nawait session.commit()\nprint({COUNT})\n")
    assert result.returncode == 0
    assert (result.stdout, result.stderr) == ("1\n", "")  # a read-only transaction is no change


# --- IPython -----------------------------------------------------------------------


def open_ipython(probe: Probe, terminals: list[Terminal], *args: str) -> Terminal:
    """Open ``shell -i ipython ARGS`` on a terminal, skipping without IPython."""
    pytest.importorskip("IPython")
    env = dict(probe.env, IPY_TEST_SIMPLE_PROMPT="1")  # input() instead of prompt_toolkit
    return open_shell(terminals, env, "-i", "ipython", *args, prompt="In [1]: ")


def ipython_cell(terminal: Terminal, line: str, number: int) -> str:
    """Type ``line`` into IPython; return its output up to prompt ``In [number]``."""
    os.write(terminal.fd, line.encode() + b"\n")
    return terminal.expect(f"In [{number}]: ")


def test_ipython_awaits_on_the_shells_loop(probe: Probe, terminals: list[Terminal]) -> None:
    terminal = open_ipython(probe, terminals, "--sandbox")
    assert "IPython" in terminal.output
    assert "SANDBOX" in terminal.output

    def cell(line: str, number: int) -> str:
        return ipython_cell(terminal, line, number)

    cell("import asyncio; await asyncio.sleep(0); loop = asyncio.get_running_loop()", 2)
    cell("await session.execute(text('insert into shell_probe values (1)'))", 3)
    cell(f"await session.commit(); n = {COUNT}", 4)
    out = cell("await asyncio.sleep(0); print(n, asyncio.get_running_loop() is loop)", 5)
    assert "1 True\n" in out
    terminal.send(b"exit()\n")
    assert terminal.wait() == 0
    assert "Sandbox: rolled back." in terminal.output
    assert probe.count() == 0


def test_ipython_shows_a_database_error_short_and_recovers(
    probe: Probe, terminals: list[Terminal]
) -> None:
    terminal = open_ipython(probe, terminals)

    def cell(line: str, number: int) -> str:
        return ipython_cell(terminal, line, number)

    out = cell("await session.execute(text('select * from no_such_table'))", 2)
    assert REFUSED.rstrip() in out
    assert "Traceback" not in out
    assert len(out.strip().splitlines()) < 8
    assert "1\n" in cell("print(await session.scalar(text('select 1')))", 3)
    terminal.send(b"exit()\n")
    assert terminal.wait() == 0


_WITHOUT_IPYTHON = """
import sys
sys.modules["IPython"] = None  # as if it were not installed
from project.management import main
main(["shell", "-i", "ipython"])
"""


def test_ipython_missing_is_a_one_line_error(db_url: DatabaseURL, tmp_path: Path) -> None:
    result = python("-c", _WITHOUT_IPYTHON, env=environment(db_url, tmp_path))
    assert result.returncode == 1
    assert result.stderr == "Error: IPython is not installed; install it or use -i python\n"
