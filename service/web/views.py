"""The routes. Each view parses the request, calls the game, and renders a template; the
same URL answers an htmx fragment when `HX-Request` is set and a whole page otherwise.
"""
from __future__ import annotations

from urllib.parse import parse_qsl

from sse_starlette import EventSourceResponse
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from service.chapters.game import GameError, owned_by
from service.web import journey, pages, pictures
from service.web.owner import ONE_YEAR
from service.web.start_limit import client_address
from service.web.streams import chapter_stream


def _services(request: Request):
    return request.app.state.services


def _owner(request: Request, create: bool = False) -> str | None:
    return _services(request).owners.token(request, create)


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def _form(request: Request) -> dict[str, str]:
    try:
        if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            # Starlette would quietly replace bad bytes; a form that is not UTF-8 is refused instead.
            # Parsed here once: Starlette's form parser costs a millisecond before every choice.
            return dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True, errors="strict"))
        form = await request.form()
    except UnicodeDecodeError:
        raise GameError(400, "The form could not be read: it was not valid UTF-8 text.") from None
    return {key: value for key, value in form.items() if isinstance(value, str)}


def _number(request: Request) -> int:
    return int(request.path_params["number"])


async def _owned_chapter(request: Request):
    return await _services(request).game.owned_chapter(request.path_params["adventure_id"], _owner(request),
                                                       _number(request))


async def start_page(request: Request) -> Response:
    html = await pages.start(_services(request))
    return _services(request).owners.attach(request, HTMLResponse(html))


async def create_adventure(request: Request) -> Response:
    services = _services(request)
    await services.start_limit.admit(client_address(request))  # before any work at all
    form = await _form(request)
    token = _owner(request, create=True)
    adventure = await services.game.begin(token, form.get("story_category"), form.get("lesson_topic"),
                                          seed=services.settings.adventure_seed)
    response = RedirectResponse(f"/adventures/{adventure.id}/chapters/1", status_code=303)
    return services.owners.attach(request, response, token)


async def adventure_page(request: Request) -> Response:
    game = _services(request).game
    adventure = await game.owned(request.path_params["adventure_id"], _owner(request))
    number = await game.current_chapter(adventure)
    return RedirectResponse(f"/adventures/{adventure.id}/chapters/{number}", status_code=303)


async def chapter_page(request: Request) -> Response:
    services = _services(request)
    adventure, chapter = await _owned_chapter(request)
    log = services.game.events(adventure, chapter)
    if not log.ended:
        body = pages.streaming_chapter(services, adventure, chapter.number, log)
        return StreamingResponse(body, media_type="text/html; charset=utf-8")
    return HTMLResponse(await pages.chapter(services, adventure, chapter.number, log))


async def choose(request: Request) -> Response:
    services = _services(request)
    form = await _form(request)
    adventure, chapter = await services.game.choose(request.path_params["adventure_id"], _owner(request),
                                                    _number(request), form.get("choice"))
    return await _to_chapter(request, adventure, chapter.number)


async def retry(request: Request) -> Response:
    adventure, chapter = await _owned_chapter(request)
    await _services(request).game.retry(adventure, chapter)
    return await _to_chapter(request, adventure, chapter.number)


async def _to_chapter(request: Request, adventure, number: int) -> Response:
    url = f"/adventures/{adventure.id}/chapters/{number}"
    if not _is_htmx(request):
        return RedirectResponse(url, status_code=303)
    html = await pages.chapter_fragment(_services(request), adventure, number)
    return HTMLResponse(html, headers={"HX-Push-Url": url})


async def summary_page(request: Request) -> Response:
    services = _services(request)
    adventure = await services.game.owned(request.path_params["adventure_id"], _owner(request))
    return HTMLResponse(await journey.summary(services, adventure))


async def summary_stream(request: Request) -> Response:
    services = _services(request)
    adventure = await services.game.owned(request.path_params["adventure_id"], _owner(request))
    return EventSourceResponse(journey.summary_events(services, adventure), ping=15)


async def retry_summaries(request: Request) -> Response:
    services = _services(request)
    adventure = await services.game.owned(request.path_params["adventure_id"], _owner(request))
    await journey.retry_summaries(services, adventure)
    return RedirectResponse(f"/adventures/{adventure.id}/summary", status_code=303)


async def picture(request: Request) -> Response:
    services = _services(request)
    adventure_id, digest = request.path_params["adventure_id"], request.path_params["digest"]
    if (kept := services.recent_pictures.get(adventure_id, digest)) is not None:
        number, drawing = kept
        # Drawn here lately, for a chapter written here: its owner is known without a read.
        if services.game.owned_here(adventure_id, _owner(request), number) is not None:
            return pictures.picture_response(request, drawing)
    adventure, found = await services.pictures.picture(adventure_id, digest, background=True)
    owned_by(adventure, _owner(request))
    if found is None:
        raise GameError(404, "There is no such picture in this adventure.")
    return pictures.picture_response(request, found)


async def picture_stream(request: Request) -> Response:
    services = _services(request)
    number = _number(request)
    adventure = await services.game.owned_adventure(request.path_params["adventure_id"], _owner(request), number)
    if not services.settings.pictures:
        raise GameError(404, "This story has no pictures.")
    return EventSourceResponse(pictures.picture_events(services, adventure, number), ping=15,
                               headers={"Cache-Control": "no-store"})


async def change_settings(request: Request) -> Response:
    form = await _form(request)
    response = RedirectResponse(pages.back_path(request.headers.get("referer"), request.headers.get("host")), 303)
    for name in pages.COMFORT.keys() & form.keys():
        response.set_cookie(pages.COMFORT_COOKIE.format(name), pages.comfort_value(name, form[name]),
                            max_age=ONE_YEAR, httponly=True, samesite="lax", secure=request.url.scheme == "https")
    return response


def _with_comfort(view):
    """Every page shows the reader's text size and contrast, read from their cookies."""
    async def comfortable(request: Request) -> Response:
        pages.use_comfort(_services(request).pages.env, request.cookies)
        return await view(request)
    return comfortable


async def stream(request: Request) -> Response:
    services, number = _services(request), _number(request)
    adventure, log = await services.game.owned_events(request.path_params["adventure_id"], _owner(request), number)
    return chapter_stream(request, services, adventure, number, log)


ROUTES = [Route(route.path, _with_comfort(route.endpoint), methods=route.methods) for route in [
    Route("/", start_page, methods=["GET"]),
    Route("/", create_adventure, methods=["POST"]),
    Route("/adventures/{adventure_id}", adventure_page, methods=["GET"]),
    Route("/adventures/{adventure_id}/chapters/{number:int}", chapter_page, methods=["GET"]),
    Route("/adventures/{adventure_id}/chapters/{number:int}/choice", choose, methods=["POST"]),
    Route("/adventures/{adventure_id}/chapters/{number:int}/retry", retry, methods=["POST"]),
    Route("/adventures/{adventure_id}/chapters/{number:int}/stream", stream, methods=["GET"]),
    Route("/adventures/{adventure_id}/chapters/{number:int}/pictures", picture_stream, methods=["GET"]),
    Route("/adventures/{adventure_id}/pictures/{digest}", picture, methods=["GET"]),
    Route("/adventures/{adventure_id}/summary", summary_page, methods=["GET"]),
    Route("/adventures/{adventure_id}/summary/stream", summary_stream, methods=["GET"]),
    Route("/adventures/{adventure_id}/summary/retry", retry_summaries, methods=["POST"]),
    Route("/settings", change_settings, methods=["POST"]),
]]
