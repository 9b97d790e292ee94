"""Error pages: every refusal and failure answers a page that says what happened in words a
player understands, with the site's headers; an unexpected error is logged and answered
here too, never left to the server (which would drop the connection).
"""
from __future__ import annotations

import logging

from sqlalchemy.exc import TimeoutError as NoConnectionFree
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.types import Message, Receive, Scope, Send

from service.chapters.game import GameError
from service.web.guards import BodyTooLarge
from service.web.headers import HttpMiddleware
from service.web.start_limit import TooManyStarts

log = logging.getLogger(__name__)

_HEADINGS = {400: "That did not work", 403: "Not allowed", 404: "Not found", 405: "Not allowed",
             409: "Already moved on", 413: "Too large", 429: "Please wait a moment", 503: "Please wait a moment"}
# Seconds a player (or a client) is asked to wait when the server is too busy to answer.
BUSY_RETRY_SECONDS = 5


async def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    html = await request.app.state.services.pages.render(
        "error.html", status=status, heading=_HEADINGS.get(status, "Something went wrong"), message=message
    )
    return HTMLResponse(html, status_code=status)


async def _game_error(request: Request, exc: GameError) -> HTMLResponse:
    return await error_page(request, exc.status, exc.message)


async def _http_error(request: Request, exc: HTTPException) -> HTMLResponse:
    message = {404: "There is nothing at this address.", 405: "This address does not accept that kind of request."}
    return await error_page(request, exc.status_code, message.get(exc.status_code, str(exc.detail)))


async def _too_large(request: Request, exc: BodyTooLarge) -> HTMLResponse:
    return await error_page(request, 413, "The request is too large.")


async def _wait_page(request: Request, status: int, seconds: int, message: str) -> HTMLResponse:
    """An error page that asks the player (and a client, by Retry-After) to wait `seconds`."""
    response = await error_page(request, status, message)
    response.headers["Retry-After"] = str(seconds)
    return response


async def _too_many_starts(request: Request, exc: TooManyStarts) -> HTMLResponse:
    return await _wait_page(
        request, 429, exc.retry_after, f"Many adventures were started from your network just now. Please wait "
                                       f"{exc.retry_after} seconds, then start yours. Adventures already under way "
                                       "go on as before.")


async def _busy(request: Request, exc: NoConnectionFree) -> HTMLResponse:
    # Every database connection of this process stayed taken for the pool's whole wait: the
    # process has more players than it can serve. Each of the request's transactions was
    # stored whole or not at all, so trying again is safe (a choice already taken answers
    # with its chapter, or 409).
    log.warning("%s %s: no database connection came free (%s)", request.method, request.url.path, exc)
    return await _wait_page(request, 503, BUSY_RETRY_SECONDS,
                            "So many players are reading right now that this took too long. Your adventure is "
                            f"safe: please wait {BUSY_RETRY_SECONDS} seconds, then try again.")


EXCEPTION_HANDLERS = {GameError: _game_error, HTTPException: _http_error, BodyTooLarge: _too_large,
                      TooManyStarts: _too_many_starts, NoConnectionFree: _busy}


class ServerErrors(HttpMiddleware):
    """Starlette's last resort re-raises every error to the server, and uvicorn then closes the
    connection even after the error page went out: here the page is the answer."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            if started:  # a stream already under way: the server ends it
                raise
            log.exception("%s %s failed", scope["method"], scope["path"])
            response = await error_page(Request(scope), 500, "Something went wrong on our side. Your adventure "
                                                             "is safe: please try again in a moment.")
            await response(scope, receive, send)
