"""Read a ``.env`` file: the one adapter over python-dotenv's parser.

python-dotenv's public ``dotenv_values()`` logs a line it cannot parse and goes on, and
expands ``${VAR}`` preferring the file's values. The settings need the opposite of both:
a bad line stops the program with its line number, and the real environment wins in
expansions as it wins for the values themselves. Only the parser's ``parse_stream`` and
``parse_variables`` give that, so they are used here and nowhere else;
``tests/project/conf/test_envfile.py`` fails if python-dotenv changes them.
"""

from __future__ import annotations

import io
import os
import re
from pathlib import Path

from project.exceptions import ImproperlyConfigured

_NEWLINE = re.compile(r"\r\n|\n|\r")


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a dotenv file; a line that is not ``KEY=value`` is an error naming it."""
    from dotenv.parser import parse_stream
    from dotenv.variables import parse_variables

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ImproperlyConfigured(f"env file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ImproperlyConfigured(f"env file {path} cannot be read: {exc}") from None
    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            # The binding's text starts with the blank lines before it; skip them.
            original = binding.original.string
            blank = original[: len(original) - len(original.lstrip())]
            line = binding.original.line + len(_NEWLINE.findall(blank))
            raise ImproperlyConfigured(f"env file {path}, line {line}: expected KEY=value")
        if binding.key is None:
            continue
        raw = binding.value or ""
        # Expand ${VAR} as python-dotenv does, but with the environment winning over the
        # file's earlier values, as it wins for the settings.
        values[binding.key] = "".join(
            atom.resolve({**values, **os.environ}) for atom in parse_variables(raw)
        )
    return values
