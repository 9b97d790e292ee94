"""The headers every answer carries, decided in one place: a strict Content-Security-Policy
(the site's own scripts, styles and connections only; htmx runs under it with the config in
base.html), nosniff, a Referrer-Policy, and `no-store` on everything but the static files, so
that no shared cache or back button keeps a player's adventure. Plain ASGI: streams pass untouched.
"""
from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
ALWAYS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
}
# Files that are the same for everyone; every other answer is about someone's adventure.
SHARED_PATHS = ("/static/", "/favicon.ico")


def add_security_headers(headers: MutableHeaders, path: str) -> None:
    """Adds what is missing; a header the route set itself (a stream's no-store) stays."""
    for name, value in ALWAYS.items():
        headers.setdefault(name, value)
    if not path.startswith(SHARED_PATHS):
        headers.setdefault("cache-control", "no-store")


class HttpMiddleware:
    """Plain ASGI middleware for HTTP requests; everything else (lifespan) passes straight on."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.http(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class SecurityHeaders(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                add_security_headers(MutableHeaders(scope=message), scope["path"])
            await send(message)

        await self.app(scope, receive, send_with_headers)
