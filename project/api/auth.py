"""Who may write: bearer tokens from ``API_TOKENS``, or loopback in development.

- With ``API_TOKENS`` set (required under ``ENVIRONMENT=production``), every request
  that writes (anything but GET, HEAD, OPTIONS) needs ``Authorization: Bearer <token>``
  matching one of them; missing or wrong answers 401 before the endpoint runs.
- With no tokens outside production, writes come only from loopback clients (403
  otherwise): a development server reachable from the network is read-only.

Only sha256 digests of the tokens are kept, compared in constant time.

``require_write_access`` is one dependency, the bearer scheme itself (so ``/docs`` shows
it): a read costs one method check, not a scheme and a dependency solved per request.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable

from fastapi import HTTPException, Request
from fastapi.security import HTTPBearer

from project.conf import get_settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def token_matches(token: str, hashes: Iterable[str]) -> bool:
    """Return whether ``token``'s sha256 is one of ``hashes``, in constant time."""
    digest = hashlib.sha256(token.encode()).hexdigest()
    matched = False
    for known in hashes:  # no early exit: the time does not tell which one matched
        matched |= hmac.compare_digest(digest, known)
    return matched


def is_loopback(host: str | None) -> bool:
    """Return whether ``host`` is a loopback address (127.0.0.0/8, ::1, or mapped)."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def check_write_access(request: Request, token: str | None) -> None:
    """Raise 401 unless ``token`` is one of the API tokens (when tokens are set, and
    always in production), else 403 unless the client is on loopback."""
    settings = get_settings()
    hashes = settings.api_token_hashes
    if hashes or settings.is_production:
        if token is None or not token_matches(token, hashes):
            raise HTTPException(
                status_code=401,
                detail="writing needs a valid bearer token (Authorization: Bearer <token>)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        return
    client = request.client
    if not is_loopback(client.host if client else None):
        raise HTTPException(
            status_code=403,
            detail="without API_TOKENS, writes are accepted only from loopback",
        )


class WriteAccess(HTTPBearer):
    """The API's bearer scheme as a dependency: reads pass, a write needs a valid token
    (or, in development with no tokens set, a loopback client)."""

    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        """Let reads through; refuse a write without access (401, or 403 off loopback)."""
        if request.method in SAFE_METHODS:
            return
        credentials = await super().__call__(request)
        check_write_access(request, credentials.credentials if credentials else None)


require_write_access = WriteAccess(
    auto_error=False,
    scheme_name="HTTPBearer",
    description="One of the API_TOKENS; needed for writes in production.",
)
