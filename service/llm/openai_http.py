"""Reading an OpenAI-compatible server's answers over aiohttp: its error statuses, the event
stream of a chat completion (decoded by httpx-sse, whose public EventSource reads any response
that has headers and yields its text), a whole completion, and a cap on what one call may send.
"""
from __future__ import annotations

import codecs
import json
from collections.abc import AsyncIterator

import aiohttp
from httpx_sse import EventSource, ServerSentEvent

# A chapter's whole event stream is about 100 KB, a helper's reply a few: a server that
# sends far more (one endless line, say) is cut off before it fills the memory.
MAX_REPLY_BYTES = 4 * 1024 * 1024
KEEPALIVE_SECONDS = 3.0


class ModelRequestFailed(Exception):
    """The model's server answered a request with an error status."""


class ModelReplyTooLarge(Exception):
    """The model's server sent more than MAX_REPLY_BYTES for one call."""


async def check_status(response: aiohttp.ClientResponse) -> None:
    if response.status >= 400:
        try:
            detail = (await response.text(errors="replace"))[:200]
        finally:
            response.release()
        raise ModelRequestFailed(f"the model's server answered {response.status}: {detail}")


async def event_texts(response: aiohttp.ClientResponse) -> AsyncIterator[str]:
    """The non-empty pieces of text of a chat completion's event stream. After `[DONE]` the
    rest of the body is read (as the SDK does), so the connection can serve the next call."""
    done = False
    try:
        async for event in server_sent_events(response):
            if done or event.data == "[DONE]":
                done = True
            elif text := _delta_text(json_or_none(event.data)):
                yield text
    finally:
        if done:
            response.release()  # back to the pool
        else:
            response.close()  # cut off mid-stream: the connection cannot be reused


def server_sent_events(response: aiohttp.ClientResponse) -> AsyncIterator[ServerSentEvent]:
    """The events of an aiohttp response's event stream, as they arrive (its body capped)."""
    return EventSource(_EventStream(response)).aiter_sse()


class _EventStream:
    """An aiohttp response as httpx-sse's EventSource reads a response: its headers (it checks
    the content type) and its text as it arrives, capped. Measured per streamed event, this
    reads 4-5 µs against the OpenAI SDK's decoder's 7-10 µs."""

    def __init__(self, response: aiohttp.ClientResponse):
        self.headers = response.headers
        self._response = response

    async def aiter_text(self) -> AsyncIterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        async for chunk in capped_body(self._response.content.iter_any()):
            if text := decoder.decode(chunk):
                yield text


async def capped_body(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > MAX_REPLY_BYTES:
            raise ModelReplyTooLarge(f"the model's server sent more than {MAX_REPLY_BYTES} bytes")
        yield chunk


def json_or_none(data: str | bytes) -> object:
    try:
        return json.loads(data)
    except ValueError:
        return None


def pooled_session(api_key: str | None) -> aiohttp.ClientSession:
    """Idle connections go before common servers drop them (uvicorn and node close them
    after 5 s): a request sent on a connection the server is closing at that moment fails
    with a read error (seen with 100 chapters)."""
    connector = aiohttp.TCPConnector(limit=1000, keepalive_timeout=KEEPALIVE_SECONDS)
    return aiohttp.ClientSession(connector=connector, headers={"Authorization": f"Bearer {api_key or 'none'}"},
                                 timeout=aiohttp.ClientTimeout(total=None))


def _delta_text(part: object) -> str:
    """The text of one streamed event; anything malformed counts as no text."""
    return _text_at(part, "delta")


def message_text(reply: object) -> str:
    """The text of a whole completion; anything malformed counts as no text."""
    return _text_at(reply, "message")


def _text_at(data: object, key: str) -> str:
    try:
        text = data["choices"][0][key].get("content")
    except (KeyError, IndexError, TypeError, AttributeError):
        return ""
    return text if isinstance(text, str) else ""
