"""Optional bearer-token auth. With a token set, every request but ``GET /healthz`` must carry it:
``Authorization: Bearer <token>`` (API clients) or the ``fakescope_token`` cookie (the web page, which
sets it from the form the 401 page shows)."""

from __future__ import annotations

import hmac

__all__ = ["COOKIE", "OPEN_PATHS", "authorized"]

COOKIE = "fakescope_token"
#: Paths answered without the token.
OPEN_PATHS = frozenset({"/healthz"})


def authorized(token: str | None, header: str | None, cookie: str | None) -> bool:
    """Whether a request with this ``Authorization`` header and cookie may pass (constant-time)."""
    if not token:
        return True
    given = ""
    if header and header[:7].lower() == "bearer ":
        given = header[7:].strip()
    elif cookie:
        given = cookie
    return hmac.compare_digest(given.encode(), token.encode())
