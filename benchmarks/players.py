"""A virtual player: starts an adventure, reads chapter 1's page, then plays chapters over
the htmx path (choice POST with HX-Request, then the SSE stream), timing every event."""
from __future__ import annotations

import argparse
import asyncio
import random
import re
import ssl
import time
from dataclasses import dataclass, field
from functools import cache

import httpx
from httpx_sse import EventSource

from benchmarks.pictures import PictureFollower, page_stream
from tests.support.player import ChapterPage, choices_from_html
from tests.support.scripted_replies import find_request_tag

SSE_CONNECT = re.compile(r'sse-connect="([^"]+)"')


@cache
def _tls() -> ssl.SSLContext:
    # Only plain http on 127.0.0.1 is used, but every httpx client would otherwise load the
    # CA bundle again (tens of ms of the measuring loop's time per player).
    return ssl.create_default_context()


def warm_up() -> None:
    """Pay the client's one-time costs (CA bundle, HTML parser imports) before measuring."""
    _tls()
    ChapterPage.parse("/", '<div id="chapter-text">warm</div>')


@dataclass
class ChapterRecord:
    """One chapter as a player saw it; times are time.monotonic() (shared by processes)."""

    number: int
    posted: float                   # the choice POST's first byte went to the socket
    answered: float | None = None   # the choice POST's answer arrived
    connected: float | None = None  # the stream's headers arrived
    first_chunk: float | None = None  # the first chunk of the model's text (its tag names the request)
    tag: str | None = None          # the model request's tag that opened the first chunk
    chunk_times: list[float] = field(default_factory=list)
    closed: float | None = None
    error: str | None = None
    choices_html: str = ""
    # With pictures: when the chapter's picture event came, and when its bytes were in.
    picture_event: float | None = None
    picture_visible: float | None = None
    picture_serial: int | None = None  # the scripted image request that drew it
    picture_error: str | None = None


class StreamCounter:
    def __init__(self) -> None:
        self.open = 0


async def read_stream(client: httpx.AsyncClient, url: str, record: ChapterRecord,
                      on_first: asyncio.Event | None = None) -> None:
    untagged: float | None = None  # the first chunk, when no chunk carries a tag
    async with client.stream("GET", url, headers={"Accept": "text/event-stream"}) as response:
        if response.status_code != 200:
            record.error = f"stream answered {response.status_code}"
            return
        record.connected = time.monotonic()
        async for event in EventSource(response).aiter_sse():
            now, name, data = time.monotonic(), event.event, event.data
            if name == "chunk":
                # The service's own text (a lesson's feedback) may open a chapter before
                # the model's: the model's text starts with the chunk carrying its tag.
                if record.first_chunk is None:
                    untagged = untagged or now
                    record.tag = find_request_tag(data)
                    if record.tag is None:
                        continue
                    record.first_chunk = now
                record.chunk_times.append(now)
                if on_first is not None:
                    on_first.set()
            elif name == "choices":
                record.choices_html = data
            elif name == "chapter-error":
                record.error = "chapter-error event"
            elif name == "close":
                record.closed = now
                record.first_chunk = record.first_chunk or untagged  # counted as unmatched
                return
    record.error = record.error or "stream ended without close"


async def play_chapter(client: httpx.AsyncClient, number: int, action: str, choice: str,
                       streams: StreamCounter, on_first: asyncio.Event | None = None,
                       followers: list[asyncio.Future] | None = None,
                       follower: PictureFollower | None = None, page: int | None = None) -> ChapterRecord:
    """`follower` follows the chapter's picture on the stream of the player's `page` (it comes
    after the text); its future goes into `followers`."""
    record = ChapterRecord(number, time.monotonic())

    async def sent(event: str, _info: dict) -> None:
        # The POST counts from its first byte on the wire: building the request is the
        # measuring client's own time (2–3 ms of httpx here), not the server's.
        if event == "http11.send_request_headers.started":
            record.posted = time.monotonic()

    try:
        response = await client.post(action, data={"choice": choice}, headers={"HX-Request": "true"},
                                     extensions={"trace": sent})
        record.answered = time.monotonic()
        found = SSE_CONNECT.search(response.text) if response.status_code == 200 else None
        if found is None:
            record.error = f"choice answered {response.status_code}"
            return record
        streams.open += 1
        try:
            await read_stream(client, found.group(1), record, on_first)
        finally:
            streams.open -= 1
        if follower is not None and page is not None:
            followers.append(follower.follow(page, record))
    except (httpx.HTTPError, OSError) as exc:
        record.error = f"{type(exc).__name__}: {exc}"[:200]
    return record


async def begin(client: httpx.AsyncClient, world: str, topic: str, streams: StreamCounter) -> ChapterPage:
    """Start an adventure and read chapter 1's (progressively streamed) page to its end."""
    response = await client.post("/", data={"story_category": world, "lesson_topic": topic})
    if response.status_code != 303:
        raise RuntimeError(f"starting an adventure answered {response.status_code}")
    url = response.headers["location"]
    streams.open += 1  # the page streams while chapter 1 is written: an open stream too
    try:
        page = await client.get(url)
    finally:
        streams.open -= 1
    if page.status_code != 200:
        raise RuntimeError(f"chapter 1 answered {page.status_code}")
    return ChapterPage.parse(url, page.text)


def think_range(text: str) -> tuple[float, float]:
    """"MIN,MAX" seconds of think time (`--think`)."""
    low, high = (float(part) for part in text.split(","))
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"{text!r}: MIN,MAX with 0 <= MIN <= MAX")
    return low, high


@dataclass
class PlayerPlan:
    base_url: str
    chapters: int
    worlds: list[str]
    topics: list[str]
    think: tuple[float, float] = (1.0, 3.0)
    start_spread: float = 2.0


async def play(plan: PlayerPlan, seed: int, streams: StreamCounter, records: list[ChapterRecord],
               follower: PictureFollower) -> None:
    """Play chapters 2..chapters+1, appending each record as soon as it is done; `follower`
    follows the chapters' pictures."""
    rng = random.Random(seed)
    timeout = httpx.Timeout(60.0, connect=30.0)
    followers: list[asyncio.Future] = []
    async with httpx.AsyncClient(base_url=plan.base_url, timeout=timeout, verify=_tls()) as client:
        try:
            await _play(plan, rng, client, streams, records, followers, follower)
        finally:
            # The last pictures come after the last chapter: the player waits for them.
            await asyncio.gather(*followers, return_exceptions=True)


async def _play(plan: PlayerPlan, rng: random.Random, client: httpx.AsyncClient, streams: StreamCounter,
                records: list[ChapterRecord], followers: list[asyncio.Future],
                follower: PictureFollower) -> None:
    await asyncio.sleep(rng.uniform(0, plan.start_spread))
    try:
        page = await begin(client, rng.choice(plan.worlds), rng.choice(plan.topics), streams)
    except (httpx.HTTPError, OSError, RuntimeError) as exc:
        records.append(ChapterRecord(1, time.monotonic(), error=f"start: {exc!r}"[:200]))
        return
    action, choices = page.action, page.choices
    # The page has loaded: its picture stream opens, and follows the chapters its choices swap in.
    pictures = follower.follow_page(dict(client.cookies), url) if (url := page_stream(page.html)) else None
    for number in range(2, plan.chapters + 2):
        if not action or not choices:
            return
        await asyncio.sleep(rng.uniform(*plan.think))
        record = await play_chapter(client, number, action, rng.choice(choices), streams, followers=followers,
                                    follower=follower, page=pictures)
        records.append(record)
        if record.error:
            return
        action, choices = choices_from_html(record.choices_html)

