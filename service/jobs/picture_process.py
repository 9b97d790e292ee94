"""The pictures are drawn in a process of their own, below the server's CPU priority.

Drawing a picture is the heaviest of the server's background work: the helper's call, the
image model's call and its megabytes, the screening. In the server's process it took a
quarter of the interpreter at 50 players, and every stream waited for the interpreter's
lock behind it. The picture process (`python -m service picture-worker`, see
service/picture_worker.py) does that work niced below the server, so the operating system
gives the streams the CPU first. It only reads the store: the server keeps the picture
jobs, and stores what is drawn, as the database's one writer (a second writing process
queued the server's writes behind its own in SQLite's lock, 20-200 ms under load).

The server's side, `PictureProcess`, starts the child, asks it for drawings and waits for
them; a child that dies is started again, and the drawings it owed fail (their jobs try
again). The child's side, `ServerLink`, answers each request. It ends when the server does:
its input closes.

Requests are JSON arrays, one a line: ["scene", id, adventure, number, story text or null],
["option", id, adventure, choice number]. Answers: ["ready"] once, then for each request
["drawn", id, alt, prompt, content type, SHA-256 digest, size] followed by that many bytes of
picture,
["none", id] (too little was fit to draw) or ["failed", id, message].
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
from itertools import count
from typing import BinaryIO

from service.config import Settings
from service.jobs.drawings import Drawings, Drawn
from service.llm.images import Drawing

log = logging.getLogger(__name__)
# The child's settings, as JSON, in its environment.
SETTINGS_VARIABLE = "LANTERNPATH_PICTURE_WORKER_SETTINGS"
RESTART_SECONDS = 1.0
READY_SECONDS = 120.0
STOP_SECONDS = 10.0
# The longest line of an answer (a picture's bytes come after it, not in it).
LINE_LIMIT = 1024 * 1024


class DrawingFailed(Exception):
    """The picture process could not draw the picture (its message says why)."""


class PictureProcess:
    """The server's side: starts the picture process, keeps it running, asks it for drawings."""

    def __init__(self, settings: Settings):
        self._environment = {**os.environ, SETTINGS_VARIABLE: _settings_json(settings)}
        self._child: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task | None = None
        self._stopping = False
        self._ready = asyncio.Event()
        self._ids = count(1)
        self._waiting: dict[int, asyncio.Future] = {}

    def start(self) -> None:
        """Starts the child, which gets ready while the server does (`ready`)."""
        self._supervisor = asyncio.create_task(self._supervise(), name="picture process")

    async def ready(self, timeout: float = READY_SECONDS) -> None:
        """Until the child is ready (it imports its libraries and screens the choices'
        words): a server answers once its pictures can be drawn, or once the child's failure
        to start is logged."""
        if not await self._until_ready(timeout):
            log.error("the picture process was not ready after %.0f s; pictures wait for it", timeout)

    async def _until_ready(self, timeout: float) -> bool:
        """Whether the child is ready, or is within `timeout` seconds (starting, or starting again)."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Closes the child's input (it ends its drawings and exits), then waits for it."""
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

    async def scene(self, adventure_id: str, number: int, text: str | None = None) -> Drawn | None:
        return await self._ask("scene", adventure_id, number, text)

    async def option(self, adventure_id: str, number: int) -> Drawn | None:
        return await self._ask("option", adventure_id, number)

    async def _ask(self, kind: str, *request: object) -> Drawn | None:
        if not self._ready.is_set() and not await self._until_ready(READY_SECONDS):
            raise DrawingFailed("the picture process is not running")
        child = self._child
        number = next(self._ids)
        answer = self._waiting[number] = asyncio.get_running_loop().create_future()
        try:
            child.stdin.write(_line((kind, number, *request)))
            return await answer
        finally:
            self._waiting.pop(number, None)  # an answer that comes after a timeout is dropped

    async def _supervise(self) -> None:
        while not self._stopping:
            self._child = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "service", "picture-worker", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, env=self._environment, limit=LINE_LIMIT)
            try:
                await self._listen(self._child.stdout)
            finally:
                self._ready.clear()
                for answer in self._waiting.values():
                    if not answer.done():
                        answer.set_exception(DrawingFailed("the picture process ended"))
            code = await self._child.wait()
            if not self._stopping:
                log.error("the picture process ended with exit code %s; starting it again", code)
                await asyncio.sleep(RESTART_SECONDS)

    async def _listen(self, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            kind, *answer = json.loads(line)
            if kind == "ready":
                self._ready.set()
                continue
            number, *about = answer
            if kind == "drawn":
                alt, prompt, content_type, digest, size = about
                result = Drawn(alt, prompt, Drawing(await stream.readexactly(size), content_type, digest))
            waiting = self._waiting.get(number)
            if waiting is None or waiting.done():
                continue
            if kind == "drawn":
                waiting.set_result(result)
            elif kind == "none":
                waiting.set_result(None)
            else:
                waiting.set_exception(DrawingFailed(about[0]))


class ServerLink:
    """The picture process's side: draws what the server asks for and answers it."""

    def __init__(self, output: BinaryIO):
        self._output = output
        self._drawing: set[asyncio.Task] = set()

    def ready(self) -> None:
        self._send(_line(("ready",)))

    async def serve(self, drawings: Drawings) -> None:
        """Answers the server's requests until it closes this process's input."""
        reader = asyncio.StreamReader(limit=LINE_LIMIT)
        loop = asyncio.get_running_loop()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            while line := await reader.readline():
                kind, number, *request = json.loads(line)
                draw = drawings.scene if kind == "scene" else drawings.option
                task = asyncio.create_task(self._answer(number, draw(*request)), name=f"{kind} {request[:2]}")
                self._drawing.add(task)
                task.add_done_callback(self._drawing.discard)
        finally:
            for task in list(self._drawing):
                task.cancel()
            await asyncio.gather(*self._drawing, return_exceptions=True)

    async def _answer(self, number: int, drawing) -> None:
        try:
            drawn = await drawing
        except Exception as exc:  # the server's job counts the attempt, and logs it
            self._send(_line(("failed", number, f"{type(exc).__name__}: {exc}"[:500])))
            return
        if drawn is None:
            self._send(_line(("none", number)))
            return
        drawing = drawn.drawing  # its digest was worked out here, not on the server's event loop
        self._send(_line(("drawn", number, drawn.alt, drawn.prompt, drawing.content_type, drawing.digest,
                          len(drawing.data))) + drawing.data)

    def _send(self, message: bytes) -> None:
        self._output.write(message)
        self._output.flush()


def settings_from_environment() -> Settings:
    return Settings.model_validate_json(os.environ[SETTINGS_VARIABLE])


def _settings_json(settings: Settings) -> str:
    # The cookie key is the server's alone; the child reads the rest exactly as the server has it.
    return settings.model_dump_json(exclude={"secret_key"})


def _line(message: tuple) -> bytes:
    return json.dumps(message, ensure_ascii=False).encode() + b"\n"
