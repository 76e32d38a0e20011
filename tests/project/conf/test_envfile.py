"""Reading ``.env`` files: ``project.conf.envfile``, the adapter over python-dotenv's parser."""

from __future__ import annotations

from pathlib import Path

import pytest

from project.conf.envfile import read_env_file
from project.exceptions import ImproperlyConfigured

PASSWORD = "s3cr3t-Pw!"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_the_parser_still_has_the_shape_the_adapter_reads() -> None:
    """If this fails, python-dotenv changed its parser: fix ``project.conf.envfile``."""
    import io

    from dotenv.parser import parse_stream
    from dotenv.variables import parse_variables

    good, bad = parse_stream(io.StringIO("\nA=x${B}\nnot a binding\n"))
    assert (good.key, good.value, good.error, good.original.line) == ("A", "x${B}", False, 1)
    assert good.original.string.startswith("\nA=")
    assert bad.error is True
    assert bad.original.line == 3
    assert "".join(atom.resolve({"B": "y"}) for atom in parse_variables("x${B}")) == "xy"


def test_read_env_file_reads_keys_and_values(tmp_path: Path) -> None:
    path = write(
        tmp_path / ".env",
        "# a comment\n"
        "\n"
        "A=1\n"
        "B = spaced \n"
        "export C=exported\n"
        "D='single quoted # not a comment'\n"
        'E="double\\nquoted"\n'
        "F=value # trailing comment\n"
        "G=\n",
    )
    assert read_env_file(path) == {
        "A": "1",
        "B": "spaced",
        "C": "exported",
        "D": "single quoted # not a comment",
        "E": "double\nquoted",
        "F": "value",
        "G": "",
    }


def test_read_env_file_later_lines_win(tmp_path: Path) -> None:
    assert read_env_file(write(tmp_path / ".env", "A=1\nA=2\n")) == {"A": "2"}


def test_read_env_file_empty_file(tmp_path: Path) -> None:
    assert read_env_file(write(tmp_path / ".env", "")) == {}


def test_read_env_file_expands_earlier_values(tmp_path: Path) -> None:
    path = write(
        tmp_path / ".env",
        "USER_NAME=app\nDB_HOST=db.example.com\n"
        "DATABASE_URL=postgresql://${USER_NAME}@${DB_HOST}:5432/orders\n",
    )
    assert read_env_file(path)["DATABASE_URL"] == "postgresql://app@db.example.com:5432/orders"


def test_read_env_file_expands_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PGTEST_SECRET", PASSWORD)
    path = write(tmp_path / ".env", "DATABASE_URL=postgresql://app:${PGTEST_SECRET}@h/db\n")
    assert read_env_file(path)["DATABASE_URL"] == f"postgresql://app:{PASSWORD}@h/db"


def test_read_env_file_expansion_prefers_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PGTEST_HOST", "from-env")
    path = write(tmp_path / ".env", "PGTEST_HOST=from-file\nURL=postgresql://${PGTEST_HOST}/db\n")
    values = read_env_file(path)
    assert values["URL"] == "postgresql://from-env/db"
    assert values["PGTEST_HOST"] == "from-file"


def test_read_env_file_expansion_defaults_and_unknowns(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("PGTEST_UNSET", raising=False)
    path = write(
        tmp_path / ".env",
        "A=x${PGTEST_UNSET}y\nB=${PGTEST_UNSET:-fallback}\nC=$PGTEST_UNSET\n",
    )
    # Only the ${VAR} form expands; an unknown one becomes empty.
    assert read_env_file(path) == {"A": "xy", "B": "fallback", "C": "$PGTEST_UNSET"}


def test_read_env_file_missing(tmp_path: Path) -> None:
    path = tmp_path / "missing.env"
    with pytest.raises(ImproperlyConfigured) as info:
        read_env_file(path)
    assert str(info.value) == f"env file {path} does not exist"


def test_read_env_file_directory(tmp_path: Path) -> None:
    with pytest.raises(ImproperlyConfigured) as info:
        read_env_file(tmp_path)
    assert str(info.value).startswith(f"env file {tmp_path} cannot be read: ")
    assert "\n" not in str(info.value)


def test_read_env_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.env"
    path.write_bytes("NAME=caf\xe9\n".encode("latin-1"))
    with pytest.raises(ImproperlyConfigured) as info:
        read_env_file(path)
    assert str(info.value).startswith(f"env file {path} cannot be read: ")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("not a binding\n", 1),
        ("A=1\nB=2\nthis is wrong\nC=3\n", 3),
        ("A=1\n\nthis is wrong\n", 3),
        ("\n\n\nthis is wrong\n", 4),
        ("A=1\n   \n\t\nthis is wrong\n", 4),
        ("# comment\n\nthis is wrong\n", 3),
        ("A=1\r\n\r\nthis is wrong\r\n", 3),
        ('A=1\nB="unterminated\nC=3\n', 2),
        ("A=1\n=no key\n", 2),
        ("A=1\nB=2\n\n\n  bad line\n", 5),
    ],
)
def test_read_env_file_malformed_line(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path / "bad.env", text)
    with pytest.raises(ImproperlyConfigured) as info:
        read_env_file(path)
    assert str(info.value) == f"env file {path}, line {line}: expected KEY=value"
