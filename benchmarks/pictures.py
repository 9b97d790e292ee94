"""Following a chapter's picture as a browser does: the picture slot that comes with the
chapter's choices opens its SSE stream; when the `picture` event for the slot comes, the
<img> it carries is fetched. The picture counts as visible once its bytes are in.

The pictures are followed in a process of their own (`PictureFollower`), as a browser's
network stack fetches a picture without holding up the page's script: the players' loop,
whose timestamps are the measurements of the text's streams, does none of this work (in it,
the pictures' requests made the loop's own lag at p99 5 ms longer at 50 players).
"""
from __future__ import annotations

import asyncio
import io
import itertools
import json
import re
import sys
import time
from dataclasses import asdict, dataclass

import aiohttp
from PIL import Image

from service.llm.openai_http import server_sent_events

PICTURE_STREAM = re.compile(r'data-image-chapter="(\d+)"[^>]*?sse-connect="([^"]+)"')
IMG_SRC = re.compile(r'<img src="([^"]+)"')


def picture_stream(html: str) -> str | None:
    found = PICTURE_STREAM.search(html)
    return found.group(2) if found else None


async def follow_picture(client: aiohttp.ClientSession, url: str, record, cookies: dict[str, str]) -> None:
    """Read the chapter's picture stream until its scene picture comes (or the stream closes);
    the times go into `record` (a players.ChapterRecord); `cookies`: the player's."""
    slot = f'id="chapter-picture-{record.number}"'
    player = {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}
    try:
        async with client.get(url, headers={"Accept": "text/event-stream", **player}) as response:
            response.raise_for_status()
            async for event in server_sent_events(response):
                if event.event == "picture" and slot in event.data and (src := IMG_SRC.search(event.data)):
                    record.picture_event = time.monotonic()
                    async with client.get(src.group(1), headers=player) as picture:
                        picture.raise_for_status()
                        data = await picture.read()
                    record.picture_visible = time.monotonic()
                    record.picture_serial = _serial(data)
                    return
                if event.event == "close":
                    return
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        record.picture_error = f"{type(exc).__name__}: {exc}"[:200]


def _serial(png: bytes) -> int | None:
    """The scripted image model's request serial, which its PNGs carry."""
    try:
        with Image.open(io.BytesIO(png)) as image:
            image.load()
            return int(image.text["serial"])
    except Exception:  # not a scripted picture: it cannot be matched to its request
        return None


@dataclass
class Seen:
    """What following one picture found (the picture fields of a players.ChapterRecord)."""

    number: int
    picture_event: float | None = None
    picture_visible: float | None = None
    picture_serial: int | None = None
    picture_error: str | None = None


class PictureFollower:
    """Follows the players' pictures in a child process (`python -m benchmarks.pictures URL`,
    one JSON line per picture each way); `follow` answers a future that is done, with the
    record's picture fields filled in, once the picture was seen or its stream closed. Times
    are time.monotonic(), which the processes share."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self._ids = itertools.count()
        self._waiting: dict[int, tuple[asyncio.Future, object]] = {}

    @property
    def pid(self) -> int:
        return self._process.pid

    async def start(self) -> PictureFollower:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.pictures", self.base_url,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self._reading = asyncio.create_task(self._read_answers())
        return self

    def follow(self, cookies: dict[str, str], url: str, record) -> asyncio.Future:
        key, done = next(self._ids), asyncio.get_running_loop().create_future()
        self._waiting[key] = (done, record)
        self._process.stdin.write(json.dumps([key, url, cookies, record.number]).encode() + b"\n")
        return done

    async def stop(self) -> None:
        self._process.stdin.close()
        try:
            await asyncio.wait_for(self._process.wait(), 30)
        except TimeoutError:
            self._process.kill()
        await asyncio.gather(self._reading, return_exceptions=True)

    async def _read_answers(self) -> None:
        while line := await self._process.stdout.readline():
            key, seen = json.loads(line)
            done, record = self._waiting.pop(key)
            for name, value in seen.items():
                setattr(record, name, value)
            if not done.done():
                done.set_result(record)


async def _follow_all(base_url: str) -> None:
    """The child: a picture to follow per line of its input, what was seen per line of output."""
    loop, following = asyncio.get_running_loop(), set()
    # One client for every player's pictures, as a browser's network stack keeps its
    # connections; each request carries its player's cookies, and nothing is kept of the
    # answers' (the pictures set none). The follower stands for the players' browsers, which
    # are not on the server's machine: here it shares the server's two cores, so it is kept
    # light. Its CPU over the 150 pictures of a 50-player level: httpx with a client per
    # picture 1.68 s, httpx with one client 1.34 s, aiohttp with one session about 0.45 s.
    async with aiohttp.ClientSession(base_url=base_url, cookie_jar=aiohttp.DummyCookieJar(),
                                     connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=600.0, connect=30.0)) as client:

        async def one(key: int, url: str, cookies: dict[str, str], number: int) -> None:
            seen = Seen(number)
            try:
                await follow_picture(client, url, seen, cookies)
            except Exception as exc:  # the player waits for an answer: it always gets one
                seen.picture_error = f"{type(exc).__name__}: {exc}"[:200]
            fields = {name: value for name, value in asdict(seen).items() if name != "number"}
            sys.stdout.write(json.dumps([key, fields]) + "\n")
            sys.stdout.flush()

        while line := await loop.run_in_executor(None, sys.stdin.readline):
            task = asyncio.create_task(one(*json.loads(line)))
            following.add(task)
            task.add_done_callback(following.discard)
        await asyncio.gather(*following, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(_follow_all(sys.argv[1]))
