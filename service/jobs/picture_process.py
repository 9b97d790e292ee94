"""The picture jobs run in a process of their own, below the server's CPU priority.

Drawing a picture is the server's heaviest background work (the helper's call, the image
model's call and its megabytes, screening, storing): in the server's process it took a
quarter of the interpreter at 50 players, and every stream waited its turn for the
interpreter's lock behind it. In a child process niced below the server, the operating
system gives the streams the CPU first and the pictures what is left.

The server (`PictureProcess`) starts the child (`python -m service picture-worker`, see
service/picture_worker.py), gives it its settings, tells it which chapters are being
written and each chapter's story as soon as it is written, and hears from it which
chapters' pictures may have changed. The child (`ServerLink`) follows those messages. It
ends when the server does: its input closes. A child that dies is started again; the jobs
it held are durable and taken again when their lease lapses.

Messages are JSON arrays, one a line: to the child ["go"] (take jobs), ["started"|"ended",
adventure, number], ["story", adventure, number, text]; from it ["ready"] and ["news",
adventure, number].
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from typing import TextIO

from service.config import Settings
from service.jobs.pictures import PictureJobs, PictureNews
from service.jobs.runner import ChapterStreams

log = logging.getLogger(__name__)
# The child's settings, as JSON, in its environment.
SETTINGS_VARIABLE = "LANTERNPATH_PICTURE_WORKER_SETTINGS"
# Added to the child's nice value: it runs when the streams leave a core free.
NICENESS = 10
RESTART_SECONDS = 5.0
READY_SECONDS = 120.0
STOP_SECONDS = 10.0

ChapterKey = tuple[str, int]


class PictureProcess:
    """The server's side: starts the picture process, keeps it running, and passes
    messages both ways. A chapter writer's watcher (`stream_started`, `stream_ended`) and
    story reader (`story_written`)."""

    def __init__(self, settings: Settings, news: PictureNews, streams: ChapterStreams):
        self.news = news
        self.streams = streams
        self._environment = {**os.environ, SETTINGS_VARIABLE: _settings_json(settings)}
        self._child: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task | None = None
        self._stopping = False
        self._taking = False
        self._ready = asyncio.Event()

    async def start(self) -> None:
        """Starts the child, which gets ready (imports, screens the choices' words) while the
        server does; it takes no job before `begin`."""
        self._supervisor = asyncio.create_task(self._supervise(), name="picture process")

    async def begin(self, timeout: float = READY_SECONDS) -> None:
        """Lets the child take jobs (the server has made the jobs a stopped process held
        pending again), and waits until it is ready: a server answers once its pictures can
        be drawn (or, if the child cannot start, with the error logged)."""
        self._taking = True
        self._send("go")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            log.error("the picture process was not ready after %.0f s; pictures wait for it", timeout)

    async def stop(self) -> None:
        """Closes the child's input (it ends its jobs and exits), then waits for it."""
        self._stopping = True
        child = self._child
        if child is not None and child.returncode is None:
            with contextlib.suppress(OSError):
                child.stdin.close()
            try:
                await asyncio.wait_for(child.wait(), STOP_SECONDS)
            except TimeoutError:
                log.warning("the picture process did not end in %.0f s; killed", STOP_SECONDS)
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
                await child.wait()
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    def stream_started(self, chapter: ChapterKey) -> None:
        self._send("started", *chapter)

    def stream_ended(self, chapter: ChapterKey) -> None:
        self._send("ended", *chapter)

    def story_written(self, chapter: ChapterKey, text: str) -> None:
        self._send("story", *chapter, text)

    def _send(self, *message: object) -> None:
        # A message lost while the child restarts costs nothing durable: a story not heard
        # is read from the store by the chapter's job, and a restarted child is told which
        # chapters are being written.
        child = self._child
        if child is not None and child.returncode is None and not child.stdin.is_closing():
            child.stdin.write(_line(message))

    async def _supervise(self) -> None:
        while not self._stopping:
            self._child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "service", "picture-worker", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, env=self._environment)
            self._ready.clear()
            for chapter in self.streams.streaming_chapters():
                self.stream_started(chapter)
            if self._taking:
                self._send("go")
            await self._listen(self._child.stdout)
            code = await self._child.wait()
            if not self._stopping:
                log.error("the picture process ended with exit code %s; starting it again", code)
                await asyncio.sleep(RESTART_SECONDS)

    async def _listen(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            try:
                kind, *message = json.loads(line)
            except ValueError:
                log.warning("the picture process said %r", line[:200])
                continue
            if kind == "news":
                self.news.notify(*message)
            elif kind == "ready":
                self._ready.set()


class ServerLink:
    """The picture process's side: the chapters the server is writing (a ChapterStreams for
    the child's job runner), what it says, and the news sent back to it."""

    def __init__(self, output: TextIO):
        self.idle = asyncio.Event()
        self.idle.set()
        self._output = output
        self._streaming: set[ChapterKey] = set()
        self._watchers: list = []
        self.taking = asyncio.Event()  # the server said "go"

    def streaming_chapters(self) -> set[ChapterKey]:
        return set(self._streaming)

    def watch(self, watcher) -> None:
        self._watchers.append(watcher)

    def send_news(self, adventure_id: str, number: int) -> None:
        self._send("news", adventure_id, number)

    def ready(self) -> None:
        self._send("ready")

    def _send(self, *message: object) -> None:
        self._output.write(_line(message).decode())
        self._output.flush()

    async def follow(self, pictures: PictureJobs) -> None:
        """Acts on the server's messages until it closes this process's input."""
        reader = asyncio.StreamReader()
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            kind, *message = json.loads(line)
            if kind == "story":
                adventure_id, number, text = message
                pictures.story_written((adventure_id, number), text)
            elif kind in ("started", "ended"):
                self._streamed(kind, (message[0], message[1]))
            elif kind == "go":
                self.taking.set()

    def _streamed(self, kind: str, chapter: ChapterKey) -> None:
        if kind == "started":
            self._streaming.add(chapter)
            self.idle.clear()
        else:
            self._streaming.discard(chapter)
            if not self._streaming:
                self.idle.set()
        for watcher in self._watchers:
            (watcher.stream_started if kind == "started" else watcher.stream_ended)(chapter)


def settings_from_environment() -> Settings:
    return Settings.model_validate_json(os.environ[SETTINGS_VARIABLE])


def _settings_json(settings: Settings) -> str:
    # The cookie key is the server's alone; the child reads the rest exactly as the server has it.
    return settings.model_dump_json(exclude={"secret_key"})


def _line(message: tuple | list) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode() + b"\n"
