"""Builds the Starlette application: its routes, middleware (security headers, guards, the
trusted proxy) and error pages. The services it calls are built and started by the
composition root (service/runtime.py) in its lifespan.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import FileResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from service.config import Settings
from service.web.errors import EXCEPTION_HANDLERS, ServerErrors
from service.web.guards import RequestGuards
from service.web.headers import SecurityHeaders
from service.web.views import ROUTES

if TYPE_CHECKING:
    from service.runtime import Services

_A_DAY = {"Cache-Control": "public, max-age=86400"}


def build_app(settings: Settings, services: Callable[[], AbstractAsyncContextManager[Services]]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        async with services() as running:
            app.state.services = running
            yield

    favicon = settings.static_dir / "favicon.ico"
    # Outermost first: the client's address is known before anything else runs, and refusals
    # by the guards carry the security headers too.
    middleware = [Middleware(SecurityHeaders), Middleware(ServerErrors),
                  Middleware(RequestGuards, max_body_bytes=settings.max_body_bytes)]
    if settings.forwarded_allow_ips:
        middleware.insert(0, Middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips))
    return Starlette(
        routes=[*ROUTES, Mount("/static", StaticFiles(directory=settings.static_dir), name="static"),
                Route("/favicon.ico", lambda request: FileResponse(favicon, headers=_A_DAY))],
        middleware=middleware,
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
