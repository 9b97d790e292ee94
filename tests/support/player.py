"""A scripted player for tests and benchmarks: reads pages the way the contract describes
them (element ids, forms, SSE events) and nothing more."""
from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx
from bs4 import BeautifulSoup
from httpx_sse import EventSource


@dataclass
class ChapterPage:
    url: str
    text: str
    choices: list[str]
    action: str | None
    summary_url: str | None
    html: str

    @classmethod
    def parse(cls, url: str, html: str) -> ChapterPage:
        soup = BeautifulSoup(html, "html.parser")
        text = soup.select_one("#chapter-text")
        buttons = soup.select('#choices button[type=submit][name=choice]')
        form = soup.select_one("#choices form[method=post]")
        summary = soup.select_one('a[href$="/summary"]')
        return cls(url, text.get_text(" ") if text else "", [b["value"] for b in buttons],
                   form["action"] if form else None, summary["href"] if summary else None, html)


@dataclass
class SseEvent:
    event: str
    id: str | None
    data: str
    at: float


@dataclass
class SseResult:
    status: int
    content_type: str
    events: list[SseEvent] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [e.event for e in self.events]

    def data(self, name: str) -> str:
        return next(e.data for e in self.events if e.event == name)


def start(client: httpx.Client, world: str, topic: str) -> str:
    response = client.post("/", data={"story_category": world, "lesson_topic": topic})
    assert response.status_code == 303, f"starting an adventure answered {response.status_code}"
    return response.headers["location"]


def read_chapter(client: httpx.Client, url: str) -> ChapterPage:
    response = client.get(url)
    assert response.status_code == 200, f"{url} answered {response.status_code}: {response.text[:300]}"
    return ChapterPage.parse(url, response.text)


def read_sse(client: httpx.Client, url: str, headers: dict | None = None, limit: int | None = None,
             until: Callable[[SseEvent], bool] | None = None) -> SseResult:
    """Read an event stream to its end, stamping each event with the time it arrived; with
    `limit`, hang up once that many events have come (a reader who leaves); with `until`,
    once an event it holds true of has come."""
    with client.stream("GET", url, headers=headers or {}) as response:
        result = SseResult(response.status_code, response.headers.get("content-type", ""))
        for event in sse_events(response):
            result.events.append(event)
            if (limit is not None and len(result.events) >= limit) or (until is not None and until(event)):
                break
        return result


def sse_events(response: httpx.Response) -> Iterator[SseEvent]:
    """The events of an open event stream, each stamped with the time it arrived (none when
    the response is not an event stream)."""
    if not response.headers.get("content-type", "").startswith("text/event-stream"):
        return
    for event in EventSource(response).iter_sse():
        yield SseEvent(event.event, event.id or None, event.data, time.monotonic())


def sse_url(fragment_html: str) -> str:
    element = BeautifulSoup(fragment_html, "html.parser").select_one('[hx-ext~="sse"][sse-connect]')
    assert element is not None, "the fragment has no element with hx-ext=sse and sse-connect"
    return element["sse-connect"]


def choose_htmx(client: httpx.Client, action: str, choice: str) -> str:
    """Send a choice as htmx does; return the SSE URL of the next chapter."""
    response = client.post(action, data={"choice": choice}, headers={"HX-Request": "true"})
    assert response.status_code == 200, f"htmx choice answered {response.status_code}: {response.text[:300]}"
    return sse_url(response.text)


def choices_from_html(html: str) -> tuple[str | None, list[str]]:
    soup = BeautifulSoup(html, "html.parser")
    form = soup.select_one("form[method=post]")
    return (form["action"] if form else None), [b["value"] for b in soup.select("button[name=choice]")]


class Journey:
    """A player who keeps going: `next_chapter` makes the next choice the htmx way and answers
    the stream URL of the chapter it starts; `arrive` reads that chapter's page (to its end).
    Once an adventure is over, the next one begins."""

    def __init__(self, client: httpx.Client, world: str, topic: str):
        self.client, self.world, self.topic = client, world, topic
        self.page: ChapterPage | None = None

    def next_chapter(self) -> str:
        if self.page is None or not self.page.choices:
            self.page = read_chapter(self.client, start(self.client, self.world, self.topic))
        return choose_htmx(self.client, self.page.action, self.page.choices[0])

    def arrive(self, stream_url: str) -> ChapterPage:
        self.page = read_chapter(self.client, stream_url.removesuffix("/stream"))
        return self.page
