"""The jobs' child-safety screening in a process of its own, below the server's CPU priority.

A summary's or a character's screening is milliseconds of pure Python (the general filter's
second look is most of it). On a thread of the server it held the interpreter's lock that
the streams wait for: at 50 players the summaries' screening alone was 5.5 % of the server's
samples (py-spy), all of it beside live streams. Here the operating system gives the streams
the CPU first, and the jobs, which no player waits on, take what is left.

The process is the standard library's process pool of one worker, started fresh (not forked
from a server with threads running); it builds the screen once, and ends with the server. A
worker that dies fails the calls it had (their jobs try again), and a new one screens the
next texts.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import ClassVar

from service.chapters.screening import ChildSafety
from service.content.screen_terms import load_lexicon
from service.domain.screen_rules import Hit
from service.jobs.below_the_server import settle_below_the_server

log = logging.getLogger(__name__)
# How often the worker looks whether the server is still there.
PARENT_CHECK_SECONDS = 1.0
# A text to screen, and the answers it may not name.
Screening = tuple[str, Sequence[str]]
Screened = tuple[str, list[Hit]]

_safety: ChildSafety | None = None  # the worker's screen, built once


def _start_worker(terms_file: str | None, server: int) -> None:
    global _safety
    settle_below_the_server()  # ended by the server's pool, or by _end_with
    # The server's pid comes from the server: one killed while this process started is gone already.
    threading.Thread(target=_end_with, args=(server,), name="end with the server", daemon=True).start()
    _safety = ChildSafety(load_lexicon(Path(terms_file) if terms_file else None))


def _end_with(server: int) -> None:
    """Ends this process once the server's is gone: a server killed outright never tells its
    pool to stop, and the worker would wait for work forever."""
    while os.getppid() == server:
        time.sleep(PARENT_CHECK_SECONDS)
    os._exit(0)


def _clean_all(texts: list[Screening]) -> list[Screened]:
    return [_safety.clean(text, answers) for text, answers in texts]


class ScreenProcess:
    """The jobs' screen in a niced process of its own (see the module's notes). One process
    serves every app in this one (a test session makes many) with the same terms file; it
    ends with this process."""

    _pools: ClassVar[dict[str | None, ProcessPoolExecutor]] = {}

    def __init__(self, terms_file: Path | None):
        self._terms_file = None if terms_file is None else str(terms_file)
        self._warm: Future | None = None

    def start(self) -> None:
        """Starts the process (if none serves these terms yet), which gets ready while the server does."""
        self._warm = self._pool().submit(_clean_all, [("Ready.", ())])

    async def ready(self) -> None:
        """Until the process has built its screen (about a second after `start`)."""
        await asyncio.wrap_future(self._warm)

    async def clean_all(self, texts: list[Screening]) -> list[Screened]:
        """Each text without the sentences the screen drops, and the hits (ChildSafety.clean)."""
        pool = self._pool()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, _clean_all, texts)
        except BrokenProcessPool:
            if self._pools.get(self._terms_file) is pool:
                log.error("the screening process ended; a new one screens the next texts")
                del self._pools[self._terms_file]
                pool.shutdown(wait=False, cancel_futures=True)
            raise

    def _pool(self) -> ProcessPoolExecutor:
        pool = self._pools.get(self._terms_file)
        if pool is None:
            pool = self._pools[self._terms_file] = ProcessPoolExecutor(
                1, mp_context=multiprocessing.get_context("spawn"), initializer=_start_worker,
                initargs=(self._terms_file, os.getpid()))
        return pool
