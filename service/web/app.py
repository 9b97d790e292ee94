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
from starlette.middleware import Middleware
from starlette.responses import FileResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from service.chapters.capacity import ChapterCapacity
from service.chapters.game import Game
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
from service.store.secrets import server_secret
from service.web.errors import EXCEPTION_HANDLERS, ServerErrors
from service.web.guards import RequestGuards
from service.web.headers import SecurityHeaders
from service.web.owner import OwnerCookies
from service.web.render import Pages
from service.web.start_limit import StartLimit
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
    owners: OwnerCookies
    start_limit: StartLimit
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
        secret = settings.secret_key.get_secret_value() if settings.secret_key else None
        owners = OwnerCookies(secret or await server_secret(sessions, "owner-cookie"))
        services = Services(settings, catalog, pages, AdventureStore(sessions, pictures=settings.pictures),
                            JobQueue(sessions), ModelClient(settings), safety, owners,
                            StartLimit(settings.start_limit_burst, settings.start_limit_seconds),
                            pictures=PictureStore(sessions),
                            images=ImageClient(settings) if settings.pictures else None,
                            picture_news=PictureNews())
        services.writer = ChapterWriter(settings, services.store, catalog, services.model, safety, pages,
                                        ChapterCapacity(settings.chapter_capacity))
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


_A_DAY = {"Cache-Control": "public, max-age=86400"}


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
