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

from redis.asyncio import Redis
from starlette.applications import Starlette

from service.chapters.capacity import ChapterCapacity
from service.chapters.game import Game
from service.chapters.screening import ChildSafety
from service.chapters.writer import ChapterWriter
from service.config import Settings
from service.content.loader import load_catalog
from service.content.screen_terms import load_lexicon
from service.domain.story import Catalog
from service.jobs.picture_news import PictureNews, RecentPictures
from service.jobs.picture_process import PictureProcess
from service.jobs.pictures import PictureJobs
from service.jobs.runner import JobRunner, Lane
from service.jobs.screen_process import ScreenProcess
from service.jobs.work import ChapterJobs
from service.llm.client import ModelClient
from service.shared.events import Mirrors, Publisher, Settle
from service.shared.limits import SharedStartLimit
from service.shared.news import News
from service.shared.redis import PROCESS_ID, connect
from service.store.adventures import AdventureStore
from service.store.db import Sessions, create_engine, migrate_async, session_factory
from service.store.jobs import JobQueue
from service.store.pictures import PICTURE_JOBS, WHILE_STREAMING, PictureStore
from service.store.secrets import server_secret
from service.web.app import build_app
from service.web.owner import OwnerCookies
from service.web.render import Pages
from service.web.start_limit import StartLimit

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
    owners: OwnerCookies
    start_limit: StartLimit
    pictures: PictureStore
    picture_news: PictureNews
    recent_pictures: RecentPictures


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    catalog = load_catalog()  # a broken content file stops start-up here, naming file, row and field
    safety = ChildSafety(load_lexicon(settings.screen_terms_file))  # so does a broken terms file
    pages = Pages(settings.templates_dir, pictures=settings.pictures)
    return build_app(settings, lambda: running(settings, catalog, safety, pages))


@contextlib.asynccontextmanager
async def running(settings: Settings, catalog: Catalog, safety: ChildSafety, pages: Pages
                  ) -> AsyncIterator[Services]:
    """The services, built on the database (migrated to the newest schema) and started."""
    await migrate_async(settings.database_url)
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    shared = Shared.of(settings)
    # Where the pictures are begun early (see below), their jobs are held for those drawings.
    early_pictures = settings.pictures and not settings.uses_local_model
    store = AdventureStore(sessions, pictures=settings.pictures,
                           picture_hold=settings.job_timeout if early_pictures else 0.0)
    model = ModelClient(settings)
    # The jobs' reads and writes give way to the players' (see store/db.py).
    job_store = AdventureStore(sessions.background, pictures=settings.pictures)
    queue = JobQueue(sessions.background, owner=PROCESS_ID, lease_seconds=settings.job_lease_seconds)
    writer = ChapterWriter(settings, store, catalog, model, safety, ChapterCapacity(settings.chapter_capacity),
                           shared.publisher if shared else None)
    pictures, news = PictureStore(sessions), PictureNews(shared.send_picture_news if shared else None)
    # The pictures are drawn in a process of their own (service/jobs/picture_process.py).
    drawer = PictureProcess(settings) if settings.pictures else None
    recent = RecentPictures()
    picture_jobs = PictureJobs(PictureStore(sessions.background), queue, drawer, news, recent) if drawer else None
    # The jobs' screening runs in a process of its own, below the streams (jobs/screen_process.py).
    screen = ScreenProcess(settings.screen_terms_file)
    screen.start()
    runner = _runner(settings, queue, writer, ChapterJobs(job_store, catalog, model, screen), picture_jobs)
    if picture_jobs is not None:
        drawer.start()  # it gets ready while this process does
        writer.watch(news)
        if early_pictures:  # not with the embedded model, whose one worker serves the streams first
            writer.on_story_written(picture_jobs.story_written)
            writer.watch(picture_jobs)
            picture_jobs.writing = writer.writing
        runner.on_finished.append(news.job_finished)
        news.drawn_here = picture_jobs.drawn_here
        picture_jobs.on_left_to_workers.append(runner.wake)
    game = Game(catalog, store, writer, shared.mirrors(lambda *attempt: game.settle(*attempt)) if shared else None)
    if early_pictures:
        game.on_begun.append(picture_jobs.adventure_begun)  # the choices' pictures are begun at once
    limit = StartLimit(settings.start_limit_burst, settings.start_limit_seconds,
                       shared.start_limit(settings) if shared else None)
    services = Services(settings, catalog, pages, store, JobQueue(sessions), writer, game, runner,
                        await _owner_cookies(settings, sessions), limit, pictures, news, recent)
    await store.warm_up()
    if shared:
        await shared.start(runner, news)
    else:  # the only process: what it was writing when it stopped can only be written again
        interrupted = await store.interrupt_unfinished()
        if interrupted:
            log.info("%d chapters were interrupted by a stop; their pages offer to write them again", interrupted)
    await runner.start(recover=not shared)
    if drawer is not None:
        await drawer.ready()
    await screen.ready()
    warm_up = asyncio.create_task(model.warm_up())
    _settle_process()
    try:
        yield services
    finally:
        warm_up.cancel()
        await writer.shutdown()
        await runner.stop()
        if picture_jobs is not None:
            await picture_jobs.stop()
            await drawer.stop()
        if shared:
            await shared.stop()
        await model.close()
        await engine.dispose()


@dataclass
class Shared:
    """What this process shares with the others through Redis (REDIS_URL): its chapters'
    events and the mirrors of theirs, wake-ups, the start limit."""

    redis: Redis
    publisher: Publisher
    news: News
    followed: Mirrors | None = None

    @classmethod
    def of(cls, settings: Settings) -> Shared | None:
        if not settings.shared:
            return None
        redis = connect(settings.redis_url)
        return cls(redis, Publisher(redis, settings.generation_keep_seconds, settings.writer_lease_seconds),
                   News(redis))

    def mirrors(self, settle: Settle) -> Mirrors:
        self.followed = Mirrors(self.redis, settle, self.publisher.lease_seconds)
        return self.followed

    def start_limit(self, settings: Settings) -> SharedStartLimit:
        return SharedStartLimit(self.redis, settings.start_limit_burst, settings.start_limit_seconds)

    def send_picture_news(self, adventure_id: str, number: int) -> None:
        self.news.send("picture", adventure_id, number)

    async def start(self, runner: JobRunner, pictures: PictureNews) -> None:
        """News of jobs and pictures goes to the other processes, and theirs comes here."""
        self.news.on("picture", pictures.wake)
        runner.on_finished.append(lambda job: self.news.send("job", job.adventure_id))
        self.news.on("job", runner.job_changed)
        await self.publisher.start()
        if self.followed is not None:
            await self.followed.start()
        await self.news.start()

    async def stop(self) -> None:
        await self.publisher.stop()
        if self.followed is not None:
            await self.followed.stop()
        await self.news.stop()
        await self.redis.aclose()


def _runner(settings: Settings, queue: JobQueue, writer: ChapterWriter, chapter_jobs: ChapterJobs,
            picture_jobs: PictureJobs | None) -> JobRunner:
    """Summaries and characters in one lane of workers; with pictures, pictures in their own."""
    handlers = chapter_jobs.handlers()
    lanes = [Lane(frozenset(handlers), settings.job_workers)]
    if picture_jobs is not None:
        handlers |= picture_jobs.handlers()
        lanes.append(Lane(PICTURE_JOBS, settings.image_concurrency, elsewhere=picture_jobs.drawing))
    return JobRunner(queue, handlers, writer, settings, lanes, while_streaming=WHILE_STREAMING)


async def _owner_cookies(settings: Settings, sessions: Sessions) -> OwnerCookies:
    """Signed with SECRET_KEY, or with a key made once and kept in the database."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    return OwnerCookies(secret or await server_secret(sessions, "owner-cookie"))


def _settle_process() -> None:
    # Everything loaded so far lives as long as the process: keep the collector from
    # walking it again and again (full collections showed up as pauses in streams).
    gc.collect()
    gc.freeze()
    # The database's threads hold the interpreter's lock for their Python work; when the
    # event loop wants it back, it waits out the switch interval (5 ms by default), a
    # wait that fell between a choice and its model request. 1 ms bounds that wait.
    sys.setswitchinterval(SWITCH_INTERVAL)
