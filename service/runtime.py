"""The composition root: builds every service the server runs on, each given its
collaborators in its constructor, starts them in order and stops them in reverse. The web
application (web/app.py) receives them whole; nothing is filled in after creation.
"""
from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass

from starlette.applications import Starlette

from service.chapters.game import Game
from service.chapters.writer import ChapterWriter
from service.config import Settings
from service.content.loader import load_catalog
from service.domain.story import Catalog
from service.jobs.runner import JobRunner
from service.jobs.work import ChapterJobs
from service.llm.client import ModelClient
from service.store.adventures import AdventureStore
from service.store.db import create_engine, migrate_async, session_factory
from service.store.jobs import JobQueue
from service.web.app import build_app
from service.web.render import Pages

log = logging.getLogger(__name__)
SWITCH_INTERVAL = 0.001  # seconds


@dataclass(frozen=True)
class Services:
    """What the web layer calls: the game, the stores, the pages; never the model."""

    settings: Settings
    catalog: Catalog
    pages: Pages
    store: AdventureStore
    jobs: JobQueue
    writer: ChapterWriter
    game: Game
    runner: JobRunner


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    catalog = load_catalog()  # a broken content file stops start-up here, naming file, row and field
    pages = Pages(settings.templates_dir)
    return build_app(settings, lambda: running(settings, catalog, pages))


@contextlib.asynccontextmanager
async def running(settings: Settings, catalog: Catalog, pages: Pages) -> AsyncIterator[Services]:
    """The services, built on the database (migrated to the newest schema) and started."""
    await migrate_async(settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    store, queue, model = AdventureStore(sessions), JobQueue(sessions), ModelClient(settings)
    writer = ChapterWriter(settings, store, catalog, model)
    runner = JobRunner(queue, ChapterJobs(store, catalog, model).handlers(), writer, settings)
    services = Services(settings, catalog, pages, store, queue, writer, Game(catalog, store, writer), runner)
    await store.warm_up()
    interrupted = await store.interrupt_unfinished()
    if interrupted:
        log.info("%d chapters were interrupted by a stop; their pages offer to write them again", interrupted)
    await runner.start()
    warm_up = asyncio.create_task(model.warm_up())
    _settle_process()
    try:
        yield services
    finally:
        warm_up.cancel()
        await writer.shutdown()
        await runner.stop()
        await model.close()
        await engine.dispose()


def _settle_process() -> None:
    # Everything loaded so far lives as long as the process: keep the collector from
    # walking it again and again (full collections showed up as pauses in streams).
    gc.collect()
    gc.freeze()
    # The database's threads hold the interpreter's lock for their Python work; when the
    # event loop wants it back, it waits out the switch interval (5 ms by default), a
    # wait that fell between a choice and its model request. 1 ms bounds that wait.
    sys.setswitchinterval(SWITCH_INTERVAL)
