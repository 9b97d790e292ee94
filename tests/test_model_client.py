"""The model client: tokens that queue up while the server is busy leave as one piece, and
both ways to a model (direct for an OpenAI-compatible server, litellm for the rest) stream
the same reply and answer helper calls."""
from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from service.llm.client import CONNECTION_RETRY_PAUSE, ModelClient, ModelStreamBroken, StreamStats
from service.llm.tokens import TokenBuffer
from tests.conftest import scripted_settings
from tests.support.scripted_replies import build_reply

MESSAGES = [{"role": "user", "content": "CHAPTER 2: the caravan reaches the oasis."}]


async def _tokens(pieces, finished: list, error: Exception | None = None):
    try:
        for piece in pieces:
            await asyncio.sleep(0)
            yield piece
        if error is not None:
            raise error
    finally:
        finished.append(True)


async def test_when_the_reader_was_busy_then_one_take_returns_every_token_that_arrived():
    finished = []
    async with TokenBuffer(_tokens(["Once", " upon", " a", " time"], finished)) as buffer:
        await asyncio.sleep(0.01)  # busy elsewhere while all four arrive
        assert await buffer.take() == ("Once upon a time", 4)
        assert await buffer.take() == ("", 0)
    assert finished == [True]


async def test_when_the_reader_keeps_up_then_each_take_is_one_token():
    async with TokenBuffer(_tokens(["Once", " upon", " a"], [])) as buffer:
        assert [await buffer.take() for _ in range(4)] == [("Once", 1), (" upon", 1), (" a", 1), ("", 0)]


async def test_when_the_stream_fails_then_its_text_comes_first_and_then_its_error():
    async with TokenBuffer(_tokens(["Once", " upon"], [], ConnectionResetError("dropped"))) as buffer:
        await asyncio.sleep(0.01)
        assert await buffer.take() == ("Once upon", 2)
        with pytest.raises(ConnectionResetError):
            await buffer.take()


async def test_when_the_reader_stops_early_then_the_model_stream_is_closed():
    finished = []
    async with TokenBuffer(_tokens(["Once"] * 1000, finished)) as buffer:
        await buffer.take()
    assert finished == [True]


@pytest.mark.parametrize("model", ["openai/scripted", "hosted_vllm/scripted"], ids=["direct", "litellm"])
async def test_when_a_chapter_streams_through_either_way_then_the_whole_reply_arrives(
    scripted_model, tmp_path, model
):
    scripted_model.script.update(token_interval=0.001)
    settings = scripted_settings(scripted_model, f"sqlite+aiosqlite:///{tmp_path / 'db'}", llm_model=model)
    client = ModelClient(settings)
    stats = StreamStats()
    text = "".join([piece async for piece in client.stream(MESSAGES, stats)])

    request = scripted_model.requests[-1]
    assert request["model"] == "scripted" and request["stream"]
    assert text == build_reply(request["messages"])[1]
    assert stats.tokens >= text.count(" ") // 2 and stats.model == model
    assert (await client.complete(MESSAGES)).strip()


async def test_when_the_model_server_refuses_a_connection_then_the_next_attempt_waits_and_streams(
    scripted_model, tmp_path, monkeypatch
):
    settings = scripted_settings(scripted_model, f"sqlite+aiosqlite:///{tmp_path / 'db'}")
    client = ModelClient(settings)
    start, attempts = client._start_stream, []

    async def refused_once(model, messages, *options):
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise aiohttp.ClientConnectionError("Connection refused")
        return await start(model, messages, *options)

    monkeypatch.setattr(client, "_start_stream", refused_once)
    text = "".join([piece async for piece in client.stream(MESSAGES, StreamStats())])

    assert text == build_reply(scripted_model.requests[-1]["messages"])[1]
    assert attempts[1] - attempts[0] >= CONNECTION_RETRY_PAUSE


async def test_when_the_model_sends_one_endless_line_then_the_stream_breaks_before_it_fills_the_memory(
    scripted_model, tmp_path
):
    # The idle limit never fires (bytes keep coming) and no event ever ends: only the cap stops it.
    scripted_model.script.update(flood_after=2)
    settings = scripted_settings(scripted_model, f"sqlite+aiosqlite:///{tmp_path / 'db'}", idle_timeout=60.0)
    client = ModelClient(settings)
    pieces = []
    started = time.monotonic()
    with pytest.raises(ModelStreamBroken, match="ModelReplyTooLarge"):
        async for piece in client.stream(MESSAGES, StreamStats()):
            pieces.append(piece)
    await client.close()

    assert len(pieces) == 2 and time.monotonic() - started < 30
    assert scripted_model.requests[-1]["outcome"] == "flooded"


async def test_when_only_the_providers_own_key_is_set_then_an_openai_compatible_server_gets_it(
    scripted_model, tmp_path, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "provider-key")
    settings = scripted_settings(scripted_model, f"sqlite+aiosqlite:///{tmp_path / 'db'}", llm_api_key=None)
    client = ModelClient(settings)
    "".join([piece async for piece in client.stream(MESSAGES, StreamStats())])
    await client.complete(MESSAGES)
    await client.close()

    assert [r["authorization"] for r in scripted_model.requests[-2:]] == ["Bearer provider-key"] * 2
