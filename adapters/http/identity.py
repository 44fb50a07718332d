"""Who is calling: a pluggable resolver; by default the `X-User-Id` header set by the host's own auth."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request

USER_HEADER = "X-User-Id"
MAX_USER_ID = 256

Identity = Callable[[Request], Awaitable[str | None] | str | None]
"""Returns the caller's user id, or None for an unauthenticated caller (answered 401). Plain or async.

A host with its own auth passes one that reads its session or token; the default trusts the header,
which is right only behind a host (or gateway) that sets it and strips it from outside requests.
"""


def user_id_header(request: Request) -> str | None:
    """The default resolver: the `X-User-Id` header, when present once and not blank. Given twice, it names no one:
    a gateway that adds its header instead of replacing the caller's would otherwise let the caller's own count."""
    given = request.headers.getlist(USER_HEADER)
    if len(given) != 1:
        return None
    return given[0].strip() or None
