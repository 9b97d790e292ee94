"""The picture process (`python -m service picture-worker`, started by the server only):
the picture jobs' workers and the pictures begun early, on the server's database and
models, told by the server what it writes (see service/jobs/picture_process.py)."""
from __future__ import annotations

import asyncio
import logging
import os
import sys

from service.chapters.screening import ChildSafety, off_the_loop
from service.content.loader import load_catalog
from service.content.screen_terms import load_lexicon
from service.jobs.picture_process import NICENESS, ServerLink, settings_from_environment
from service.jobs.pictures import PictureJobs, PictureNews
from service.jobs.runner import JobRunner, Lane
from service.llm.client import ModelClient
from service.llm.images import ImageClient
from service.shared.redis import PROCESS_ID
from service.store.adventures import AdventureStore
from service.store.db import create_engine, session_factory
from service.store.jobs import JobQueue
from service.store.pictures import PICTURE_JOBS, WHILE_STREAMING, PictureStore

log = logging.getLogger(__name__)


def main() -> None:
    os.nice(NICENESS)
    # The messages to the server go where stdout was; anything else written to stdout
    # (a library's print) goes to the log instead of into them.
    messages = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    asyncio.run(_run(ServerLink(messages)))


async def _run(link: ServerLink) -> None:
    settings = settings_from_environment()
    catalog = load_catalog()
    safety = ChildSafety(load_lexicon(settings.screen_terms_file))
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    queue = JobQueue(sessions, owner=PROCESS_ID, lease_seconds=settings.job_lease_seconds)
    model, images = ModelClient(settings), ImageClient(settings)
    news = PictureNews(link.send_news)
    pictures = PictureJobs(AdventureStore(sessions, pictures=True), PictureStore(sessions), queue, catalog, model,
                           images, safety, news)
    runner = JobRunner(queue, pictures.handlers(), link, settings,
                       [Lane(PICTURE_JOBS, settings.image_concurrency, elsewhere=pictures.drawing)],
                       while_streaming=WHILE_STREAMING)
    runner.on_finished.append(news.job_finished)
    pictures.on_left_to_workers.append(runner.wake)
    following = None
    try:
        await images.load()
        await off_the_loop(pictures.warm_up)
        link.ready()
        following = asyncio.create_task(link.follow(pictures))
        # The server first makes the jobs a stopped process held pending again, then says "go".
        go = asyncio.create_task(link.taking.wait())
        await asyncio.wait([go, following], return_when=asyncio.FIRST_COMPLETED)
        go.cancel()
        if not following.done():
            await runner.start(recover=False)
            log.info("the picture process is drawing (pid %d)", os.getpid())
        await following
    finally:
        if following is not None:
            following.cancel()
        await runner.stop()
        await pictures.stop()
        await model.close()
        await images.close()
        await engine.dispose()

