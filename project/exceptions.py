"""The project's one exception family: each error reaches the user as one line."""


class ProjectError(Exception):
    """An error the user can act on; the CLI prints it as ``Error: <message>`` and exits 1."""

    exit_code = 1


class ImproperlyConfigured(ProjectError):
    """A setting is missing or has a bad value."""


class CommandError(ProjectError):
    """A management command could not do what it was asked."""


class DatabaseUnavailable(ProjectError):
    """The database could not be reached."""


def first_line(text: str) -> str:
    """Return the first non-empty line of ``text``: errors reach the user as one line."""
    return (text.strip().splitlines() or [""])[0]


def summary(error: BaseException) -> str:
    """Return ``Type: first line of the message`` (just ``Type`` when it has none)."""
    line = first_line(str(error))
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


def scrub(message: str) -> str:
    """Replace every configured database password in ``message`` with ``***``.

    The one place output is cleaned of secrets: the CLI, the shell, the API's error log
    and the test plugin all print through it. Every URL in the settings counts.
    """
    import dataclasses

    from project.conf import get_settings  # conf imports this module: not at the top
    from project.db.url import MASK, DatabaseURL

    try:
        settings = get_settings()
    except ProjectError:
        return message
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        urls = value if isinstance(value, tuple) else (value,)
        for url in urls:
            if isinstance(url, DatabaseURL) and url.password:
                message = message.replace(url.password, MASK)
    return message


class NotFound(ProjectError):
    """No live row has the key asked for (the API answers 404)."""


class Conflict(ProjectError):
    """A write collides with what is stored: a unique key taken, a row still referenced
    (the API answers 409)."""


class StaleVersion(Conflict):
    """A versioned row changed since the caller read it (the API answers 409)."""


class InvalidCursor(ProjectError):
    """A pagination cursor that this project did not hand out (the API answers 422)."""
