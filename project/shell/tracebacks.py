"""Errors as the shell shows them: the user's frames only, and a line or two for a database
error, whose full traceback runs through SQLAlchemy and the driver for a hundred lines."""

from __future__ import annotations

import sys
import traceback

from project.exceptions import describe, driver_error, is_connection_failure, scrub

__all__ = ["database_note", "format_error", "sql_error", "tb"]


def database_note(error: BaseException) -> str | None:
    """Return a line saying the database is unavailable, if that is what ``error`` means."""
    if is_connection_failure(error):
        return f"The database is unavailable: {describe(error)}"
    return None


def sql_error(error: BaseException) -> str | None:
    """Return an error of the database driver as ``describe()``'s line, plus the server's
    DETAIL and HINT lines when it gave them; None if ``error`` is not one."""
    if "sqlalchemy" not in sys.modules:
        return None
    from sqlalchemy.exc import DBAPIError

    if not isinstance(error, DBAPIError):
        return None
    cause = driver_error(error)
    lines = [describe(error)]
    if "asyncpg" in sys.modules:
        import asyncpg

        if isinstance(cause, asyncpg.PostgresError):  # the server's fields, as psql shows them
            extra = (("DETAIL", cause.detail), ("HINT", cause.hint))
            lines += [f"{label}:  {text}" for label, text in extra if text]
    return "\n".join(lines)


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
