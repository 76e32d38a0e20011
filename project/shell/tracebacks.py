"""Errors as the shell shows them: the user's frames only, and one line for a database
that is down."""

from __future__ import annotations

import traceback


def database_note(error: BaseException) -> str | None:
    """Return a line saying the database is unavailable, if that is what ``error`` means."""
    from project.errors import describe_database_error
    from project.exceptions import DatabaseUnavailable

    if isinstance(error, DatabaseUnavailable):
        return f"The database is unavailable: {error}"
    described = describe_database_error(error)
    if described is not None and described.startswith("cannot connect"):
        return f"The database is unavailable: {described}"
    return None


def format_error(error: BaseException, filename: str) -> str:
    """Return ``error``'s traceback from the first frame of ``filename`` (the user's code,
    not the shell's); a database that is down gets one line instead of the driver's frames."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    if tb is None and isinstance(error, SyntaxError):
        return "".join(traceback.format_exception_only(type(error), error))
    note = database_note(error)
    if note is None:
        return "".join(traceback.format_exception(type(error), error, tb))
    user_frames, frame = 0, tb
    while frame is not None and frame.tb_frame.f_code.co_filename == filename:
        user_frames, frame = user_frames + 1, frame.tb_next
    lines = traceback.format_exception(type(error), error, tb, limit=user_frames, chain=False)
    return "".join(lines) + note + "\n"
