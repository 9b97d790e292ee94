"""Following a page's pictures as a browser does: once the first chapter's page has loaded,
its picture stream opens, and stays open while the player plays on (the choices swap each
next chapter into the page). When a `picture` event for the chapter on the page comes, the
<img> it carries is fetched. The picture counts as visible once its bytes are in.

The pictures are followed in a process of their own (`PictureFollower`), as a browser's
network stack fetches a picture without holding up the page's script: the players' loop,
whose timestamps are the measurements of the text's streams, does none of this work (in it,
the pictures' requests made the loop's own lag at p99 5 ms longer at 50 players).
"""
from __future__ import annotations

import asyncio
import contextlib
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

PAGE_STREAM = re.compile(r'id="picture-stream"[^>]*?sse-connect="([^"]+)"')
PICTURE_SLOT = re.compile(r'id="chapter-picture-(\d+)"')
IMG_SRC = re.compile(r'<img src="([^"]+)"')
# A chapter's picture not seen this long after the player reached it counts as never seen.
SEEN_LIMIT = 60.0


def page_stream(html: str) -> str | None:
    """The picture stream of a page (None without pictures)."""
    found = PAGE_STREAM.search(html)
    return found.group(1) if found else None


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
    """What following one chapter's picture found (the picture fields of a players.ChapterRecord)."""

    picture_event: float | None = None
    picture_visible: float | None = None
    picture_serial: int | None = None
    picture_error: str | None = None


class PictureFollower:
    """Follows the players' pictures in a child process (`python -m benchmarks.pictures URL`,
    one JSON line per message each way). `follow_page` opens a page's picture stream; `follow`
    answers a future that is done, with the record's picture fields filled in, once the
    chapter's picture was seen, the page went on to the next chapter without it, or
    SEEN_LIMIT passed. Times are time.monotonic(), which the processes share."""

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

    def follow_page(self, cookies: dict[str, str], url: str) -> int:
        """Opens the page's picture stream (`url`) with the player's cookies: the page's key."""
        page = next(self._ids)
        self._send(["page", page, url, cookies])
        return page

    def follow(self, page: int, record) -> asyncio.Future:
        """The page now shows the record's chapter: its picture is looked out for."""
        key, done = next(self._ids), asyncio.get_running_loop().create_future()
        self._waiting[key] = (done, record)
        self._send(["chapter", key, page, record.number])
        return done

    def _send(self, message: list) -> None:
        self._process.stdin.write(json.dumps(message).encode() + b"\n")

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


class _Page:
    """The child's side of one page: its stream's pictures, and the chapter it shows."""

    def __init__(self, answer):
        self.answer = answer  # answer(key, Seen)
        self.seen: dict[int, Seen] = {}
        self.shown: tuple[int, int] | None = None  # (key, chapter) that the page shows, not seen yet

    def show(self, key: int, number: int) -> None:
        self.leave()
        if number in self.seen:
            self.answer(key, self.seen[number])
        else:
            self.shown = (key, number)

    def leave(self, why: str | None = None) -> None:
        """The page goes on (or its stream ended, `why`) without the chapter's picture."""
        if self.shown is not None:
            key, self.shown = self.shown[0], None
            self.answer(key, Seen(picture_error=why))

    def saw(self, number: int, seen: Seen) -> None:
        self.seen[number] = seen
        if self.shown is not None and self.shown[1] == number:
            key, self.shown = self.shown[0], None
            self.answer(key, seen)

    async def follow(self, client: aiohttp.ClientSession, url: str, cookies: dict[str, str]) -> None:
        """Read the page's picture stream, fetching each chapter's picture as it comes."""
        player = {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}
        why = "the page's picture stream ended"
        try:
            async with client.get(url, headers={"Accept": "text/event-stream", **player}) as response:
                response.raise_for_status()
                async for event in server_sent_events(response):
                    if event.event == "close":
                        break
                    if event.event == "picture" and (src := IMG_SRC.search(event.data)):
                        seen = Seen(picture_event=time.monotonic())
                        async with client.get(src.group(1), headers=player) as picture:
                            picture.raise_for_status()
                            data = await picture.read()
                        seen.picture_visible, seen.picture_serial = time.monotonic(), _serial(data)
                        if slot := PICTURE_SLOT.search(event.data):  # a chapter's, not a choice's
                            self.saw(int(slot.group(1)), seen)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            why = f"{type(exc).__name__}: {exc}"[:200]
        self.leave(why)


async def _follow_all(base_url: str) -> None:
    """The child: a page or a chapter to follow per line of its input, what was seen of each
    chapter per line of its output."""
    loop, pages, following = asyncio.get_running_loop(), {}, set()

    def answer(key: int, seen: Seen) -> None:
        sys.stdout.write(json.dumps([key, asdict(seen)]) + "\n")
        sys.stdout.flush()

    def in_time(page: _Page, key: int) -> None:
        if page.shown is not None and page.shown[0] == key:
            page.leave(f"not seen within {SEEN_LIMIT:.0f} s")

    # One client for every player's pictures, as a browser's network stack keeps its
    # connections; each request carries its player's cookies, and nothing is kept of the
    # answers' (the pictures set none). The follower stands for the players' browsers, which
    # are not on the server's machine: here it shares the server's two cores, so it is kept
    # light. Its CPU over the 150 pictures of a 50-player level: httpx with a client per
    # picture 1.68 s, httpx with one client 1.34 s, aiohttp with one session about 0.45 s.
    async with aiohttp.ClientSession(base_url=base_url, cookie_jar=aiohttp.DummyCookieJar(),
                                     connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=None, connect=30.0)) as client:
        while line := await loop.run_in_executor(None, sys.stdin.readline):
            kind, key, *about = json.loads(line)
            if kind == "page":
                url, cookies = about
                page = pages[key] = _Page(answer)
                task = asyncio.create_task(page.follow(client, url, cookies))
                following.add(task)
                task.add_done_callback(following.discard)
            else:
                page_key, number = about
                page = pages[page_key]
                page.show(key, number)
                loop.call_later(SEEN_LIMIT, in_time, page, key)
        for page in pages.values():
            page.leave("the players stopped")
        for task in following:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*following, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(_follow_all(sys.argv[1]))
