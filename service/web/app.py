"""Builds the Starlette application and, in its lifespan, everything it runs on: the
catalog, the database (migrated to the newest schema), the model client, the chapter
writer and the job workers.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from service.chapters.game import Game, GameError
from service.chapters.screening import ChildSafety
from service.chapters.writer import ChapterWriter
from service.config import Settings
from service.content.loader import load_catalog
from service.content.screen_terms import load_lexicon
from service.domain.story import Catalog
from service.jobs.pictures import PictureNews
from service.jobs.runner import JobRunner, Lane
from service.jobs.work import HANDLERS
from service.llm.client import ModelClient
from service.llm.images import ImageClient
from service.store.adventures import AdventureStore
from service.store.db import create_engine, migrate_async, session_factory
from service.store.jobs import JobQueue
from service.store.pictures import PICTURE_JOBS, WHILE_STREAMING, PictureStore
from service.web.guards import BodyTooLarge, RequestGuards
from service.web.render import Pages
from service.web.views import ROUTES

log = logging.getLogger(__name__)
SWITCH_INTERVAL = 0.001  # seconds


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    pages: Pages
    store: AdventureStore
    jobs: JobQueue
    model: ModelClient
    safety: ChildSafety
    pictures: PictureStore = None
    images: ImageClient | None = None  # None: no IMAGE_MODEL, no pictures
    picture_news: PictureNews = None
    writer: ChapterWriter = None
    game: Game = None
    runner: JobRunner = None


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    catalog = load_catalog()  # a broken content file stops start-up here, naming file, row and field
    safety = ChildSafety(load_lexicon(settings.screen_terms_file))
    pages = Pages(settings.templates_dir, pictures=settings.pictures)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await migrate_async(settings.database_url)
        engine = create_engine(settings.database_url)
        sessions = session_factory(engine)
        services = Services(settings, catalog, pages, AdventureStore(sessions, pictures=settings.pictures),
                            JobQueue(sessions), ModelClient(settings), safety, PictureStore(sessions),
                            ImageClient(settings) if settings.pictures else None, PictureNews())
        services.writer = ChapterWriter(settings, services.store, catalog, services.model, safety, pages)
        services.game = Game(catalog, services.store, services.writer)
        services.runner = _runner(services)
        services.writer.on_started.append(services.runner.stream_started)
        services.writer.on_closed.append(services.runner.wake)
        if services.images is not None:
            await services.images.load()  # before the first player, and before the freeze below
            services.writer.on_started.append(_wake_for_first_chapter(services.runner))
            services.writer.on_closed.append(services.picture_news.chapter_closed)
            services.runner.on_finished.append(services.picture_news.job_finished)
        await services.store.warm_up()
        interrupted = await services.store.interrupt_unfinished()
        if interrupted:
            log.info("%d chapters were interrupted by a stop; their pages offer to write them again", interrupted)
        await services.runner.start()
        warm_up = asyncio.create_task(services.model.warm_up())
        app.state.services = services
        # Everything loaded so far lives as long as the process: keep the collector from
        # walking it again and again (full collections showed up as pauses in streams).
        gc.collect()
        gc.freeze()
        # The database's threads hold the interpreter's lock for their Python work; when the
        # event loop wants it back, it waits out the switch interval (5 ms by default), a
        # wait that fell between a choice and its model request. 1 ms bounds that wait.
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            yield
        finally:
            warm_up.cancel()
            await services.writer.shutdown()
            await services.runner.stop()
            await services.model.close()
            await engine.dispose()

    return Starlette(
        routes=[*ROUTES, Mount("/static", StaticFiles(directory=settings.static_dir), name="static")],
        middleware=[Middleware(RequestGuards, max_body_bytes=settings.max_body_bytes)],
        exception_handlers={GameError: _game_error, HTTPException: _http_error, BodyTooLarge: _too_large},
        lifespan=lifespan,
    )


def _runner(services: Services) -> JobRunner:
    """Summaries and characters in one lane of workers; with pictures, pictures in their own."""
    settings = services.settings
    text_jobs = frozenset(HANDLERS) - PICTURE_JOBS
    lanes = [Lane(text_jobs, settings.job_concurrency)]
    if settings.pictures:
        lanes.append(Lane(PICTURE_JOBS, settings.image_concurrency))
    return JobRunner(services, HANDLERS, lanes, while_streaming=WHILE_STREAMING)


def _wake_for_first_chapter(runner: JobRunner):
    """An adventure that has just begun has its choices' pictures to draw: start at once."""
    def wake(generation) -> None:
        if generation.number == 1:
            runner.wake()
    return wake


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
