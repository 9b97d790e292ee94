"""Builds the Starlette application: its routes, guards and error pages. The services it
calls are built and started by the composition root (service/runtime.py) in its lifespan.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from service.chapters.game import GameError
from service.config import Settings
from service.web.guards import BodyTooLarge, RequestGuards
from service.web.views import ROUTES

if TYPE_CHECKING:
    from service.runtime import Services


def build_app(settings: Settings, services: Callable[[], AbstractAsyncContextManager[Services]]) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        async with services() as running:
            app.state.services = running
            yield

    return Starlette(
        routes=[*ROUTES, Mount("/static", StaticFiles(directory=settings.static_dir), name="static")],
        middleware=[Middleware(RequestGuards, max_body_bytes=settings.max_body_bytes)],
        exception_handlers={GameError: _game_error, HTTPException: _http_error, BodyTooLarge: _too_large},
        lifespan=lifespan,
    )


_HEADINGS = {400: "That did not work", 403: "Not allowed", 404: "Not found", 405: "Not allowed",
             409: "Already moved on", 413: "Too large"}


async def _error_page(request: Request, status: int, message: str) -> HTMLResponse:
    html = await request.app.state.services.pages.render(
        "error.html", status=status, heading=_HEADINGS.get(status, "Something went wrong"), message=message
    )
    return HTMLResponse(html, status_code=status)


async def _game_error(request: Request, exc: GameError) -> HTMLResponse:
    return await _error_page(request, exc.status, exc.message)


async def _http_error(request: Request, exc: HTTPException) -> HTMLResponse:
    message = {404: "There is nothing at this address.", 405: "This address does not accept that kind of request."}
    return await _error_page(request, exc.status_code, message.get(exc.status_code, str(exc.detail)))


async def _too_large(request: Request, exc: BodyTooLarge) -> HTMLResponse:
    return await _error_page(request, 413, "The request is too large.")
