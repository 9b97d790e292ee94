"""Every stream ends: wherever a reader hangs up or the server stops (killed, or stopped
gracefully), the next reconnect, whatever Last-Event-ID it sends (the last id it saw, any id
it saw, none, a number, junk), ends with `close`: after the rest of the chapter, or after a
`chapter-error` whose retry writes the chapter. The server-stop property runs real server
processes; its examples are few, each one costs a restart."""
from __future__ import annotations

import html
import signal
from collections.abc import Iterator

import httpx
import pytest
from bs4 import BeautifulSoup
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import player
from tests.support.server_process import ServerProcess

WORLD, TOPIC = "frostpeak-observatory", "solar-system"
FINISHED = ["replace-content", "choices", "close"]
FAILED = ["chapter-error", "close"]

# What a header may carry on the wire: visible ASCII and the bytes of other encodings.
_HEADER_BYTES = st.integers(0x21, 0xFF).filter(lambda b: b != 0x7F)
LAST_EVENT_IDS = st.one_of(
    st.tuples(st.just("the last id seen"), st.none()),
    st.tuples(st.just("an id seen"), st.integers(0, 10**6)),
    st.tuples(st.just("none"), st.none()),
    st.tuples(st.just("a number"), st.integers(-10, 10**20).map(lambda n: str(n).encode())),
    st.tuples(st.just("junk"), st.lists(_HEADER_BYTES, min_size=1, max_size=12).map(bytes)),
)


def _header(choice: tuple[str, object], seen: player.SseResult) -> bytes | None:
    kind, value = choice
    ids = [e.id for e in seen.events]
    if kind == "the last id seen":
        return ids[-1].encode() if ids else None
    if kind == "an id seen":
        return ids[value % len(ids)].encode() if ids else None
    return value


def _seen_event(seen: player.SseResult, header: bytes | None) -> player.SseEvent | None:
    """The event the header names, if the reader saw it (a browser's own reconnect)."""
    return next((e for e in seen.events if header is not None and e.id.encode() == header.strip()), None)


def _text(events: list[player.SseEvent]) -> str:
    return " ".join(html.unescape("".join(e.data for e in events if e.event == "chunk")).split())


def _read(client: httpx.Client, url: str, events: int) -> player.SseResult:
    """What a reader saw before leaving after `events` events (0: it never came)."""
    if not events:
        return player.SseResult(200, "text/event-stream")
    return player.read_sse(client, url, limit=events)


def _assert_ends(again: player.SseResult) -> None:
    assert again.status == 200 and again.content_type.startswith("text/event-stream"), again.status
    assert again.names and again.names[-1] == "close", f"the stream ended with {again.names[-3:]}"
    assert again.names.count("close") == 1
    ids = [int(e.id) for e in again.events]
    assert ids == sorted(set(ids)), f"ids out of order: {ids}"


def _expected_end(seen: player.SseResult, header: bytes | None, end: list[str]) -> list[str]:
    """The end's events a reconnect gets: those after the end event it names, else all."""
    named = _seen_event(seen, header)
    if named is not None and named.event in end[:-1]:
        return end[end.index(named.event) + 1:]
    return end


@pytest.fixture
def journey(client) -> player.Journey:
    return player.Journey(client, WORLD, TOPIC)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hang_up_after=st.integers(0, 80), resume=LAST_EVENT_IDS)
def test_when_a_reader_hangs_up_anywhere_then_any_reconnect_ends_with_close_after_the_chapter(
    client, scripted_model, journey, hang_up_after, resume
):
    scripted_model.script.token_interval = 0.005
    stream_url = journey.next_chapter()
    seen = _read(client, stream_url, hang_up_after)
    header = _header(resume, seen)

    again = player.read_sse(client, stream_url, headers={} if header is None else {"Last-Event-ID": header})

    _assert_ends(again)
    tail = _expected_end(seen, header, FINISHED)
    assert again.names[-len(tail):] == tail
    full = _text(player.read_sse(client, stream_url, headers={"Last-Event-ID": b"x"}).events)
    named = _seen_event(seen, header)
    if named is not None and named.event == "chunk":  # resumed after it: nothing twice, nothing missing
        up_to = seen.events[:seen.events.index(named) + 1]
        assert _text(up_to + again.events) == full
    elif header is None or not header.strip().isdigit():  # no id of ours: from the start
        assert _text(again.events) == full
    else:  # a number: from the start, or right after one of its pieces
        assert full.endswith(_text(again.events))
    journey.arrive(stream_url)


@pytest.fixture
def process_env(scripted_model, database_url) -> dict[str, str]:
    return {"LLM_MODEL": "openai/scripted", "LLM_API_BASE": scripted_model.url, "LLM_API_KEY": "test-key",
            "DATABASE_URL": database_url}


class Restarts:
    """One server process at a time on one port and database, and a player who outlives them."""

    def __init__(self, env: dict[str, str], log_path):
        self.server = ServerProcess(env, log_path).start()
        self.client = httpx.Client(base_url=self.server.base_url, timeout=30)
        self.journey = player.Journey(self.client, WORLD, TOPIC)

    def stop_and_start(self, sig: int) -> None:
        self.server.stop(sig)
        self.server = self.server.restart()

    def close(self) -> None:
        self.client.close()
        self.server.stop(signal.SIGKILL)


@pytest.fixture
def restarts(process_env, tmp_path) -> Iterator[Restarts]:
    running = Restarts(process_env, tmp_path / "server.log")
    yield running
    running.close()


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(stop_after=st.integers(0, 60), sig=st.sampled_from([signal.SIGKILL, signal.SIGTERM]), resume=LAST_EVENT_IDS)
def test_when_the_server_stops_anywhere_then_any_reconnect_after_a_restart_ends_with_close(
    scripted_model, restarts, stop_after, sig, resume
):
    scripted_model.script.token_interval = 0.01
    client = restarts.client
    stream_url = restarts.journey.next_chapter()
    seen = _read(client, stream_url, stop_after)
    restarts.stop_and_start(sig)
    header = _header(resume, seen)

    again = player.read_sse(client, stream_url, headers={} if header is None else {"Last-Event-ID": header})

    _assert_ends(again)
    if "chapter-error" not in again.names:  # it was written before the server stopped
        assert again.names == _expected_end(seen, header, FINISHED)
        restarts.journey.arrive(stream_url)
        return
    assert again.names == _expected_end(seen, header, FAILED)
    page = BeautifulSoup(client.get(stream_url.removesuffix("/stream")).text, "html.parser")
    retry = page.select_one('#chapter .chapter-error form[action$="/retry"]')
    assert retry is not None, "the chapter offers no way to write it again"
    moved = client.post(retry["action"])
    assert moved.status_code == 303
    assert player.read_sse(client, stream_url).names[-3:] == FINISHED, "the retry did not write the chapter"
    rewritten = restarts.journey.arrive(stream_url)
    assert rewritten.text.strip(), "the rewritten chapter has no text"
