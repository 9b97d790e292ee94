"""Calls to the models: the chapter stream and the helper completions.

litellm reaches every provider, the embedded local model included. A model on an
OpenAI-compatible server (`openai/...` with LLM_API_BASE) is called directly: aiohttp
carries the request (its HTTP parser is compiled) and httpx-sse reads the event stream.
Measured per streamed token at 50 chapters at once: litellm about 1 ms of CPU (and 150 MB
of memory at import, so it is imported only when a model needs it), the SDK's client
300 µs, this way 70 µs. The tries before the first token (the chapter model twice, then
each fallback) are tenacity's.

The stream is handed on as the model writes it; whatever arrived while the reader was
busy goes out as one piece, so a loaded server does per-piece work once per batch rather
than once per token. Limits on the first token and on silence between tokens turn a
stalled model into an error the pipeline can report instead of a hang.
"""
from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, field

import aiohttp
from tenacity import AsyncRetrying, RetryCallState, RetryError, stop_after_attempt

import service  # noqa: F401  (sets litellm's offline switches before it is imported)
from service.config import LOCAL_PREFIX, Settings
from service.llm.formats import ReplyShape
from service.llm.openai_http import (
    capped_body,
    check_status,
    event_texts,
    json_or_none,
    message_text,
    pooled_session,
)
from service.llm.tokens import Silence, TokenBuffer, close_quietly

log = logging.getLogger(__name__)
CONNECTION_RETRY_PAUSE = 0.25  # seconds, times the attempts so far


@functools.cache
def _litellm():
    import litellm

    litellm.suppress_debug_info = True
    return litellm


class ModelUnavailable(Exception):
    """No model produced a first token (all attempts and fallbacks failed or stalled)."""


class ModelStreamBroken(Exception):
    """The model stopped, failed or went silent after it had started writing."""


@dataclass
class StreamStats:
    model: str = ""
    started: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    # When the first of the model's story text passed the filters (a reply retried for
    # holding none, or the wait for a turn, counts in it): what a player waits for.
    first_text_at: float | None = None
    tokens: int = 0
    # Set once the model's server has taken the request (it answered with its headers), or
    # once no attempt is under way any more.
    asked: asyncio.Event = field(default_factory=asyncio.Event)

    last_token_at: float | None = None

    @property
    def first_token_seconds(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started

    @property
    def first_text_seconds(self) -> float | None:
        return None if self.first_text_at is None else self.first_text_at - self.started

    @property
    def stream_seconds(self) -> float | None:
        """From the first token to the last: the model's writing time, for tokens per second."""
        if self.first_token_at is None or self.last_token_at is None:
            return None
        return self.last_token_at - self.first_token_at


class ModelClient:
    def __init__(self, settings: Settings):
        self.settings = settings
        if any(_is_local(m) for m in (settings.chapter_model, settings.summary_model)):
            from service.llm.local_provider import register_local_provider

            register_local_provider()
        # One connection pool for every call to an OpenAI-compatible server, made on first
        # use: it belongs to the event loop that runs the calls.
        self._http: aiohttp.ClientSession | None = None
        self._chat_url = f"{settings.llm_api_base.rstrip('/')}/chat/completions" if settings.llm_api_base else ""

    @property
    def local_chapters(self) -> bool:
        """The embedded model writes the chapters: it gets the short prompts, continues its own
        replies (the choices after a chapter), and is held to grammars."""
        return _is_local(self.settings.chapter_model)

    @property
    def local_helpers(self) -> bool:
        """The embedded model writes the summaries and descriptions."""
        return _is_local(self.settings.summary_model)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    def _session(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            # As litellm does for `openai/` models, the provider's own variable stands in.
            self._http = pooled_session(self.settings.llm_api_key or os.environ.get("OPENAI_API_KEY"))
        return self._http

    def _call_args(self, model: str) -> dict:
        args: dict = {"model": model, "num_retries": 0}
        if not _is_local(model):
            if self.settings.llm_api_base:
                args["api_base"] = self.settings.llm_api_base
            if self.settings.llm_api_key:
                args["api_key"] = self.settings.llm_api_key
        return args

    def _chapter_candidates(self) -> list[str]:
        # The chapter model gets a second try before the fallbacks: most failures are brief.
        return [self.settings.chapter_model, self.settings.chapter_model, *self.settings.fallback_models]

    async def stream(self, messages: list[dict], stats: StreamStats,
                     continue_reply: bool = False) -> AsyncIterator[str]:
        """Yield the chapter's text as the model writes it: each piece is everything that
        arrived since the previous one (one token when the server keeps up).

        `continue_reply`: the last message is the assistant's and the reply goes on from it
        (the embedded model only). A second stream for the same chapter adds to `stats`."""
        try:
            tokens, first = await self._open_stream(messages, stats, continue_reply)
        finally:
            stats.asked.set()
        if stats.first_token_at is None:
            stats.first_token_at = time.monotonic()
        stats.tokens += 1
        yield first
        async with TokenBuffer(tokens, self.settings.idle_timeout) as buffer:
            while True:
                try:
                    text, count = await buffer.take()
                except Silence as exc:
                    raise ModelStreamBroken(f"the model went silent for {self.settings.idle_timeout:.0f} s") from exc
                except Exception as exc:  # litellm and aiohttp raise many provider-specific types
                    raise ModelStreamBroken(f"the model's connection failed: {type(exc).__name__}") from exc
                if not count:
                    return
                stats.tokens += count
                stats.last_token_at = time.monotonic()
                yield text

    async def _open_stream(self, messages: list[dict], stats: StreamStats,
                           continue_reply: bool) -> tuple[AsyncIterator, str]:
        """The stream and its first token, from the first candidate that gives one."""
        candidates, errors = self._chapter_candidates(), []
        attempts = AsyncRetrying(stop=stop_after_attempt(len(candidates)), wait=_pause_after)
        try:
            async for attempt in attempts:
                with attempt:
                    model = candidates[attempt.retry_state.attempt_number - 1]
                    return await self._first_token(model, messages, stats, continue_reply, errors)
        except RetryError:
            raise ModelUnavailable("; ".join(errors)) from None
        raise AssertionError("unreachable: every attempt returns or raises")

    async def _first_token(self, model: str, messages: list[dict], stats: StreamStats, continue_reply: bool,
                           errors: list[str]) -> tuple[AsyncIterator, str]:
        stats.model = model
        tokens = None
        try:
            async with asyncio.timeout(self.settings.first_token_limit):
                tokens = aiter(await self._start_stream(model, messages, continue_reply))
                stats.asked.set()
                return tokens, await anext(tokens)
        except Exception as exc:  # a timeout, an empty stream or any provider error
            log.warning("chapter model %s failed before its first token: %r (%r)", model, exc, exc.__cause__)
            errors.append(f"{model}: {type(exc).__name__}")
            if tokens is not None:
                await close_quietly(tokens)  # a stalled stream must not keep the model busy
            raise

    def _direct(self, model: str) -> bool:
        return bool(self._chat_url) and model.startswith("openai/")

    async def _start_stream(self, model: str, messages: list[dict], continue_reply: bool) -> AsyncIterator[str]:
        settings = self.settings
        options = {"max_tokens": settings.chapter_tokens, "temperature": settings.chapter_sampling_temperature}
        if _is_local(model):
            options |= {"top_p": settings.local_top_p, "repeat_penalty": settings.local_repeat_penalty,
                        "presence_penalty": settings.local_presence_penalty,
                        "dry_multiplier": settings.local_dry_multiplier,
                        "min_tokens": settings.local_min_tokens, "end_after_tokens": settings.local_end_tokens,
                        "continue_final_message": continue_reply}
        if self._direct(model):
            body = {"model": model.split("/", 1)[1], "messages": messages, "stream": True, **options}
            response = await self._session().post(self._chat_url, json=body)
            await check_status(response)
            return event_texts(response)
        response = await _litellm().acompletion(messages=messages, stream=True, **options, **self._call_args(model))
        return _litellm_texts(response)

    async def warm_up(self) -> None:
        """Load the embedded model before the first player needs it (loading takes seconds), and
        have it read the system prompt every chapter of every adventure begins with."""
        if self.settings.uses_local_model:
            from service.llm.small_prompts import system_prompt

            try:
                await self.complete([{"role": "system", "content": system_prompt()},
                                     {"role": "user", "content": "Hello"}], max_tokens=1, chapter_model=True)
            except Exception as exc:  # the first chapter will report it to the player
                log.warning("the local model could not be loaded: %r", exc)

    async def complete(self, messages: list[dict], max_tokens: int | None = None, *,
                       shape: ReplyShape | None = None, background: bool = False,
                       continue_reply: bool = False, chapter_model: bool = False, retry: bool = False) -> str:
        """One completion beside the chapter's stream (summaries, characters, choices).

        `shape`: the reply's format, asked as structured output where the provider has it
        (and held to by a grammar on the embedded model). `background`: deferred work, which
        the embedded model serves after any chapter. `continue_reply`: the reply goes on from
        the last (assistant) message. `chapter_model`: asked of the chapter's model (whose
        context holds the chapter), not the helper model. `retry`: an unusable reply is asked
        for again, at the warmer HELPER_RETRY_TEMPERATURE."""
        model = self.settings.chapter_model if chapter_model else self.settings.summary_model
        options = {"max_tokens": max_tokens or self.settings.helper_max_tokens}
        if _is_local(model):
            options |= self._local_options(shape, background, continue_reply)
        if retry:
            options["temperature"] = self.settings.helper_retry_temperature
        elif shape is not None and (response_format := shape.response_format()) is not None:
            if self._direct(model) or _litellm().supports_response_schema(model=model):
                options["response_format"] = response_format
        if self._direct(model):
            body = {"model": model.split("/", 1)[1], "messages": messages, **options}
            timeout = aiohttp.ClientTimeout(total=self.settings.helper_timeout)
            async with self._session().post(self._chat_url, json=body, timeout=timeout) as response:
                await check_status(response)
                reply = b"".join([chunk async for chunk in capped_body(response.content.iter_any())])
                return message_text(json_or_none(reply))
        response = await _litellm().acompletion(messages=messages, timeout=self.settings.helper_timeout,
                                                **options, **self._call_args(model))
        return response.choices[0].message.content or ""

    def _local_options(self, shape: ReplyShape | None, background: bool, continue_reply: bool) -> dict:
        settings = self.settings
        options = {"temperature": settings.helper_temperature, "top_p": settings.local_top_p,
                   "repeat_penalty": settings.local_helper_repeat_penalty,
                   "continue_final_message": continue_reply, "priority": 1 if background else 0}
        if shape is not None:
            if not shape.penalize_repeats:
                options["repeat_penalty"] = 1.0
            if shape.grammar:
                options["grammar"] = shape.grammar
            else:
                options["response_format"] = shape.response_format(local=True)
        return options


def _pause_after(state: RetryCallState) -> float:
    """Many chapters starting at once can find the model's server refusing connections for a
    moment: after a refused connection the next attempt waits a little (longer each time);
    after any other failure (a stall, an error status) the next candidate is asked at once."""
    failure = state.outcome.exception() if state.outcome is not None else None
    return CONNECTION_RETRY_PAUSE * state.attempt_number if isinstance(failure, aiohttp.ClientConnectionError) else 0.0


def _is_local(model: str) -> bool:
    return model.startswith(LOCAL_PREFIX)


async def _litellm_texts(response) -> AsyncIterator[str]:
    """The non-empty pieces of text of a litellm stream (role-only and empty deltas skipped)."""
    async with aclosing(aiter(response)) as parts:
        async for part in parts:
            if part.choices and (text := part.choices[0].delta.content):
                yield text
