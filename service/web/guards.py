"""Request guards that apply to every route: cross-site POSTs are refused and request
bodies are capped, before any view runs. Plain ASGI middleware, so streams pass untouched.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class BodyTooLarge(Exception):
    pass


def is_cross_site(scope: Scope, headers: Headers) -> bool:
    """True when a browser says the request comes from another site.

    Sec-Fetch-Site is sent by every current browser; Origin covers older ones. A request
    with neither (curl, httpx) is not a browser acting for another site.
    """
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site not in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return False
    if origin == "null":
        return True
    host = headers.get("host", "")
    return urlsplit(origin).netloc.lower() != host.lower()


class RequestGuards:
    def __init__(self, app: ASGIApp, max_body_bytes: int):
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in UNSAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        if is_cross_site(scope, headers):
            await _refuse(403, "This form can only be sent from Lanternpath's own pages.", scope, receive, send)
            return
        length = headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body_bytes):
            await _refuse(413, f"The request is too large (the limit is {self.max_body_bytes} bytes).",
                          scope, receive, send)
            return
        await self.app(scope, self._capped(receive), send)

    def _capped(self, receive: Receive) -> Receive:
        seen = 0

        async def capped_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge()
            return message

        return capped_receive


async def _refuse(status: int, message: str, scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse(message, status_code=status)(scope, receive, send)
