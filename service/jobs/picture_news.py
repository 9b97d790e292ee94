"""What reaches the pages of the pictures drawn: news for their picture streams (with what a
chapter's slots show, where this process knows), and the bytes of the pictures this process
drew lately, kept in memory for the browsers that are about to ask for them.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator

from service.llm.images import Drawing
from service.store.models import Job
from service.store.pictures import PICTURE_JOBS, ChapterPictures

# A picture drawn here is served from memory for this long after it is drawn, within this
# many bytes in all (RecentPictures).
RECENT_KEEP_SECONDS = 60.0
RECENT_MAX_BYTES = 32 * 1024 * 1024


class _Follower:
    """One stream's news: that some came, and of which chapters, with what their slots show
    where the news said."""

    __slots__ = ("came", "heard")

    def __init__(self) -> None:
        self.came = asyncio.Event()
        self.heard: dict[int, ChapterPictures | None] = {}


class PictureNews:
    """Wakes the pages' picture streams of an adventure when a chapter's pictures may have
    changed; with several processes, `send` tells the others (whose streams then `wake`). A
    stream follows its adventure for as long as it is open (`following`): news that comes
    while it looks at the store is kept for its next wait, not lost (it would then have
    waited out a recheck).

    News from this process may say what the chapter's slots now show (`slots`): its streams
    then need no look at the store. `drawn_here` tells a stream that the chapter's picture
    is being drawn by this process, whose end is such news (PictureJobs answers it)."""

    def __init__(self, send: Callable[[str, int], None] | None = None) -> None:
        self._followers: dict[str, set[_Follower]] = {}
        self.send = send
        self.drawn_here: Callable[[str, int], bool] = lambda _adventure_id, _number: False

    def notify(self, adventure_id: str, number: int, slots: ChapterPictures | None = None) -> None:
        self.wake(adventure_id, number, slots)
        if self.send is not None:
            self.send(adventure_id, number)

    def wake(self, adventure_id: str, number: int, slots: ChapterPictures | None = None) -> None:
        for follower in self._followers.get(adventure_id, ()):
            follower.heard[number] = slots  # the latest news says what is known; news that says nothing, nothing
            follower.came.set()

    def job_finished(self, job: Job) -> None:
        if job.kind in PICTURE_JOBS:
            self.notify(job.adventure_id, job.chapter_number)

    def stream_started(self, chapter: tuple[str, int]) -> None:
        pass

    def stream_ended(self, chapter: tuple[str, int]) -> None:
        """A chapter closed: its picture job is due, and its slot may now be waited for."""
        self.notify(*chapter)

    @contextlib.contextmanager
    def following(self, adventure_id: str) -> Iterator[Callable[[float],
                                                                 Awaitable[dict[int, ChapterPictures | None]]]]:
        """`with news.following(a) as wait:` ... `await wait(timeout)` returns at the first
        news since the last wait returned, or after `timeout` seconds (with no news): the
        chapters it was of, each with what its slots show if the news said so, else None."""
        follower = _Follower()
        self._followers.setdefault(adventure_id, set()).add(follower)

        async def wait(timeout: float) -> dict[int, ChapterPictures | None]:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await follower.came.wait()
            follower.came.clear()
            heard, follower.heard = follower.heard, {}
            return heard

        try:
            yield wait
        finally:
            followers = self._followers[adventure_id]
            followers.discard(follower)
            if not followers:
                del self._followers[adventure_id]


class RecentPictures:
    """The pictures this process drew lately, kept a little while in memory: the browser that
    is shown one asks for its bytes within seconds, and its owner's page here needs no read
    for them (at 50 players, a read on a database thread per picture beside the streams). A
    cache only: what is not here is read from the store."""

    def __init__(self, keep_seconds: float = RECENT_KEEP_SECONDS, max_bytes: int = RECENT_MAX_BYTES):
        self._keep_seconds = keep_seconds
        self._max_bytes = max_bytes
        self._kept: OrderedDict[tuple[str, str], tuple[float, int, Drawing]] = OrderedDict()
        self._bytes = 0

    def keep(self, adventure_id: str, number: int, drawing: Drawing) -> None:
        key = (adventure_id, drawing.digest)
        self._drop(self._kept.pop(key, None))
        self._kept[key] = (time.monotonic(), number, drawing)
        self._bytes += len(drawing.data)
        horizon = time.monotonic() - self._keep_seconds
        while self._kept and (self._bytes > self._max_bytes or next(iter(self._kept.values()))[0] < horizon):
            self._drop(self._kept.popitem(last=False)[1])

    def _drop(self, entry: tuple[float, int, Drawing] | None) -> None:
        if entry is not None:
            self._bytes -= len(entry[2].data)

    def get(self, adventure_id: str, digest: str) -> tuple[int, Drawing] | None:
        """(its chapter's number, the picture) if it is kept."""
        entry = self._kept.get((adventure_id, digest))
        if entry is None or entry[0] < time.monotonic() - self._keep_seconds:
            return None
        return entry[1], entry[2]
