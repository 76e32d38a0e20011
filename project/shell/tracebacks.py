"""Errors as the shell shows them: the user's frames only, and a line or two for a database
error, whose full traceback runs through SQLAlchemy and the driver for a hundred lines."""

from __future__ import annotations

import sys
import traceback


def database_note(error: BaseException) -> str | None:
    """Return a line saying the database is unavailable, if that is what ``error`` means."""
    from project.db.errors import describe_database_error
    from project.exceptions import DatabaseUnavailable

    if isinstance(error, DatabaseUnavailable):
        return f"The database is unavailable: {error}"
    described = describe_database_error(error)
    if described is not None and described.startswith("cannot connect"):
        return f"The database is unavailable: {described}"
    return None


def sql_error(error: BaseException) -> str | None:
    """Return a statement the database refused as ``Class: message``, plus the server's
    DETAIL and HINT lines; None if ``error`` is not one."""
    if "sqlalchemy" not in sys.modules:
        return None
    from sqlalchemy import exc

    if not isinstance(error, exc.DBAPIError):
        return None
    cause: BaseException = error.orig if error.orig is not None else error
    # SQLAlchemy's adapter keeps the first line; asyncpg's own error has DETAIL and HINT.
    cause = cause.__cause__ or cause
    lines = str(cause).strip().splitlines() or [""]
    kept = [lines[0], *(line for line in lines[1:] if line.startswith(("DETAIL:", "HINT:")))]
    return f"{type(error).__name__}: " + "\n".join(kept)


def one_line(error: BaseException) -> str:
    """Return ``error`` as one line: the database's message for a database error."""
    from project.exceptions import first_line, summary

    refused = sql_error(error)
    return first_line(refused) if refused is not None else summary(error)


def format_error(error: BaseException, filename: str, *, full: bool = False) -> str:
    """Return ``error``'s traceback from the first frame of ``filename`` (the user's code,
    not the shell's); a database error gets its message after the user's frames instead of
    the chain through the driver, unless ``full``."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    if tb is None and isinstance(error, SyntaxError):
        return "".join(traceback.format_exception_only(type(error), error))
    note = None if full else database_note(error) or sql_error(error)
    if note is None:
        return "".join(traceback.format_exception(type(error), error, tb))
    user_frames, frame = 0, tb
    while frame is not None and frame.tb_frame.f_code.co_filename == filename:
        user_frames, frame = user_frames + 1, frame.tb_next
    frames = traceback.format_list(traceback.extract_tb(tb, limit=user_frames))
    return "".join(frames) + note + "\n"


def tb() -> None:
    """Print the last error's full traceback, every chained exception included."""
    from project.exceptions import scrub

    error = getattr(sys, "last_value", None)
    if error is None:
        print("No error yet.", file=sys.stderr)
        return
    start = frame = error.__traceback__
    # The input's code has a name like <console>; the frames before it are the shell's.
    while frame is not None and not frame.tb_frame.f_code.co_filename.startswith("<"):
        frame = frame.tb_next
    sys.stderr.write(scrub("".join(traceback.format_exception(type(error), error, frame or start))))
    sys.stderr.flush()
