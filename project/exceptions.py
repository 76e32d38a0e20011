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
