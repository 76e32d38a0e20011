"""``manage.py runserver``."""

from __future__ import annotations

import os

import click

from project.exceptions import CommandError

DEFAULT_ADDRPORT = "127.0.0.1:8000"


def parse_addrport(addrport: str) -> tuple[str, int]:
    """Return ``(host, port)`` from ``ADDR:PORT``, ``PORT``, ``[IPv6]:PORT`` or ``ADDR``."""
    text = addrport.strip()
    host, port = "127.0.0.1", "8000"
    if text.isdigit():
        port = text
    elif text.startswith("["):
        inside, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise CommandError(f"{addrport!r} is not ADDR:PORT; write IPv6 as [::1]:8000")
        host, port = inside, rest[1:] or port
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" not in text and text:
        host = text
    else:
        raise CommandError(f"{addrport!r} is not ADDR:PORT (e.g. 127.0.0.1:8000)")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise CommandError(f"{addrport!r} has a bad port; expected 1-65535")
    if not host or not (_is_ip(host) or _is_hostname(host)):
        raise CommandError(f"{addrport!r} has a bad address")
    return host, int(port)


def _is_ip(host: str) -> bool:
    import ipaddress  # here, not at the top: --help imports every command

    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_hostname(host: str) -> bool:
    labels = host.split(".")
    return all(label and label.replace("-", "").isalnum() for label in labels)


def _export_env_file() -> None:
    """Put the --env-file's values into the environment, where the reloader's and
    uvicorn's child processes read them (the environment still wins)."""
    from project.conf import get_settings
    from project.conf.envfile import read_env_file

    settings = get_settings()
    if settings.env_file is not None:
        for key, value in read_env_file(settings.env_file).items():
            os.environ.setdefault(key, value)


@click.command()
@click.argument("addrport", required=False, default=DEFAULT_ADDRPORT, metavar="[ADDR:PORT]")
@click.option("--noreload", is_flag=True, help="Do not restart when the code changes.")
def command(addrport: str, noreload: bool) -> None:
    """Serve project.asgi:app with uvicorn (default 127.0.0.1:8000), reloading in development."""
    from project.conf import BASE_DIR, get_settings

    settings = get_settings()
    host, port = parse_addrport(addrport)
    if settings.is_production and not settings.api_token_hashes:
        raise CommandError(
            "refusing to serve with ENVIRONMENT=production and no API_TOKENS: "
            "every write would be refused"
        )
    # Production never reloads: a file change must not restart a live server.
    reload = settings.environment == "development" and not noreload
    _export_env_file()
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Serving PasteTrader at http://{shown}:{port}/ (API docs at /docs)")
    if reload:
        click.echo("Reloading on changes in project/ and apps/; --noreload turns that off")
    elif settings.is_production:
        click.echo("ENVIRONMENT=production: no reloading")
    click.echo("Quit with CTRL-C.")
    import uvicorn

    uvicorn.run(
        "project.asgi:app",
        host=host,
        port=port,
        reload=reload,
        reload_dirs=[str(BASE_DIR / "project"), str(BASE_DIR / "apps")] if reload else None,
        workers=1,
        log_level="info",
    )
