"""The picture process (`python -m service picture-worker`, started by the server only): it
draws what the server asks for, with the server's models, reading the server's store
(see service/jobs/picture_process.py)."""
from __future__ import annotations

import asyncio
import logging
import os
import sys

from service.chapters.screening import ChildSafety, off_the_loop
from service.content.loader import load_catalog
from service.content.screen_terms import load_lexicon
from service.jobs.below_the_server import settle_below_the_server
from service.jobs.drawings import Drawings
from service.jobs.picture_process import ServerLink, settings_from_environment
from service.llm.client import ModelClient
from service.llm.images import ImageClient
from service.store.adventures import AdventureStore
from service.store.db import create_engine, session_factory
from service.store.pictures import PictureStore

log = logging.getLogger(__name__)


def main() -> None:
    settle_below_the_server()  # ended by the server closing its input
    # The answers to the server go where stdout was; anything else written to stdout (a
    # library's print) goes to the log instead of into them.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    asyncio.run(_run(ServerLink(answers)))


async def _run(link: ServerLink) -> None:
    settings = settings_from_environment()
    catalog = load_catalog()
    safety = ChildSafety(load_lexicon(settings.screen_terms_file))
    engine = create_engine(settings.database_url)
    sessions = session_factory(engine)
    model, images = ModelClient(settings), ImageClient(settings)
    drawings = Drawings(AdventureStore(sessions, pictures=True), PictureStore(sessions), catalog, model, images,
                        safety)
    try:
        await images.load()
        await off_the_loop(drawings.warm_up)
        link.ready()
        log.info("the picture process is ready to draw (pid %d)", os.getpid())
        await link.serve(drawings)
    finally:
        await model.close()
        await images.close()
        await engine.dispose()
