"""Scripted OpenAI-compatible model server for tests and benchmarks: timing and faults come from
a mutable `Script`, every request is logged with send times. In-process: ScriptedModelServer;
standalone: `python -m tests.support.scripted_model --port 8100`, tuned via POST /_script JSON."""

from __future__ import annotations

import argparse
import asyncio
import base64
import dataclasses
import itertools
import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.support.live_server import LiveServer
from tests.support.scripted_replies import build_reply, request_tag, scripted_png, split_chunks, tag_first_chunk, usage

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
                404: "not_found_error", 429: "rate_limit_exceeded"}


@dataclass
class Script:
    """Knobs read at the start of each request (mutate freely between requests).

    fault_scope ("all" | "stream" | "helper" | "image") limits every fault, inject_html included,
    to streamed (chapter) or non-streamed (helper) chat calls, or to image calls
    (POST /v1/images/generations, which answers a small real PNG after image_latency).
    fail_times counts in-scope requests that get the faults fail_status / drop_after /
    stall_* (None = every one), then recovers.
    A stall ends after stall_seconds (the stream then resumes) or at reset().
    Non-streamed calls: stall_* hang before the answer, drop_after cuts the JSON body in half.
    tag_replies opens each streamed reply with "[rN] ", N the request's serial in this process
    (its log record's "tag" is "rN"): a reader of the stream can tell which request it got.
    """

    ttft: float = 0.0               # streamed: delay before the first token
    token_interval: float = 0.0     # streamed: delay between chunks
    helper_latency: float = 0.0     # non-streamed: delay before the answer
    tokens_per_chunk: int = 1       # word-ish tokens (word + its leading whitespace) per chunk
    chunk_chars: int | None = None  # fixed-size chunks instead of tokens
    fail_status: int | None = None
    fail_times: int | None = None
    drop_after: int | None = None
    stall_after: int | None = None
    stall_before_first: bool = False
    stall_seconds: float = 3600.0
    inject_html: bool = False
    fault_scope: str = "all"
    choices_style: str = "good"     # "good" | "missing" | "malformed"
    reply_override: str | None = None  # streamed calls only
    stream_replies: list | None = None  # streamed: the next replies in turn (used up as they go), then the usual
    repeat_loop: bool = False          # streamed calls only
    tag_replies: bool = False          # streamed calls only
    story_variants: int = 1            # streamed STORY chapters: this many stories in a row (longer chapters)
    flood_after: int | None = None     # streamed: after N chunks, one endless line (no event ends)
    helper_replies: dict | None = None  # non-streamed: {"SUMMARY" | "CHARACTERS" | "CHOICES" | "PICTURE": reply}
    helper_latencies: dict | None = None  # non-streamed: {kind: delay}, instead of helper_latency
    image_latency: float = 0.0          # images: delay before the picture
    image_reply: str = "b64"            # images: "b64" (in the reply) | "url" (left at /_pictures/N.png)
    image_padding: int = 0              # images: bytes of an extra PNG chunk (a large picture)

    def update(self, **fields: Any) -> None:
        unknown = set(fields) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown script fields: {sorted(unknown)}")
        for name, value in fields.items():
            setattr(self, name, value)

    def has_failure(self) -> bool:
        return bool(self.fail_status or self.stall_before_first or self.drop_after is not None
                    or self.stall_after is not None or self.flood_after is not None)


class _DeliberateDrop(Exception):
    """Raised mid-body so uvicorn aborts the connection: no [DONE], incomplete chunked body."""


def _is_drop(exc: BaseException | None) -> bool:
    if isinstance(exc, BaseExceptionGroup):  # anyio task groups may wrap it
        return any(_is_drop(e) for e in exc.exceptions)
    return isinstance(exc, _DeliberateDrop)


class _HideDeliberateDrops(logging.Filter):
    # Drops are the point of the knob; their tracebacks would only bury real server errors.
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and _is_drop(record.exc_info[1]))


logging.getLogger("uvicorn.error").addFilter(_HideDeliberateDrops())


class ScriptedModelServer:
    """Owns the script, the request log and the app; start()/stop() run uvicorn in a thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, script: Script | None = None):
        self.host, self.port = host, port
        self.script = script or Script()
        self.requests: list[dict[str, Any]] = []
        # Never reset, so that a tag names one request even across reset() (one benchmark
        # model process serves several load levels).
        self._serials = itertools.count(1)
        self._pictures: dict[int, bytes] = {}  # pictures left at a URL (image_reply "url")
        self._generation = 0  # bumped by reset(): ends stalls left over from a previous test
        self._live: LiveServer | None = None
        self.app = Starlette(routes=[
            Route("/v1/chat/completions", self._chat, methods=["POST"]),
            Route("/v1/images/generations", self._image, methods=["POST"]),
            Route("/v1/models", self._models, methods=["GET"]),
            Route("/_pictures/{serial:int}.png", self._picture, methods=["GET"]),
            Route("/_script", self._script_endpoint, methods=["GET", "POST"]),
            Route("/_reset", self._reset_endpoint, methods=["POST"]),
            Route("/_requests", self._requests_endpoint, methods=["GET"]),
        ])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def reset(self) -> None:
        self.script = Script()
        self.requests.clear()  # clear in place: callers may hold a reference to the list
        self._generation += 1

    def start(self, timeout: float = 5.0) -> ScriptedModelServer:
        # asyncio's own loop: uvloop rounds timers to milliseconds, and a scripted delay must
        # never be shorter than the script says.
        self._live = LiveServer(self.app, self.host, self.port, lifespan="off", loop="asyncio").start(timeout)
        self.port = self._live.port
        return self

    def stop(self) -> None:
        if self._live is None:
            return
        self._generation += 1  # ends stalls, so that stopping never waits for them
        self._live.stop()
        self._live = None

    __enter__ = start

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> ScriptedModelServer:  # threads: never block the test's loop
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    async def _models(self, request: Request) -> JSONResponse:
        model = {"id": "scripted", "object": "model", "created": 0, "owned_by": "lanternpath"}
        return JSONResponse({"object": "list", "data": [model]})

    async def _chat(self, request: Request):
        received = time.monotonic()
        try:
            body = await request.json()
            messages = list(body["messages"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "request body must be JSON with a 'messages' list")
        stream = bool(body.get("stream"))
        script, in_scope, faulty = self._take_script("stream" if stream else "helper")
        kind, text = _reply(messages, script, stream, in_scope)
        serial = next(self._serials)
        tag = request_tag(serial) if stream and script.tag_replies else None
        record = {"received": received, "model": body.get("model"), "stream": stream,
                  "temperature": body.get("temperature"), "messages": messages, "kind": kind, "reply": text,
                  "tag": tag, "faulty": faulty,
                  "first_chunk": None, "last_chunk": None, "chunk_times": [],
                  "finished": None, "outcome": "pending",
                  "authorization": request.headers.get("authorization")}
        self.requests.append(record)
        if faulty and script.fail_status:
            record["outcome"] = f"error {script.fail_status}"
            return _error(script.fail_status, "scripted failure")
        model = body.get("model") or "scripted"
        if stream:
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks = split_chunks(text, script.tokens_per_chunk, script.chunk_chars)
            if tag is not None:
                chunks = tag_first_chunk(chunks, tag)
            gen = self._stream(record, chunks, script, faulty, model, include_usage)
            return StreamingResponse(gen, media_type="text/event-stream",
                                     headers={"cache-control": "no-cache"})
        return await self._complete(record, text, script, faulty, model)

    def _take_script(self, scope: str) -> tuple[Script, bool, bool]:
        """(a snapshot of the script, whether this call is in the faults' scope, whether it gets
        them); a faulty call counts against fail_times."""
        live = self.script
        in_scope = live.fault_scope in ("all", scope)
        faulty = in_scope and live.has_failure() and live.fail_times != 0
        if faulty and live.fail_times is not None:
            live.fail_times -= 1
        return dataclasses.replace(live), in_scope, faulty  # mid-stream edits affect only new requests

    async def _image(self, request: Request):
        received = time.monotonic()
        try:
            body = await request.json()
            prompt = str(body["prompt"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "request body must be JSON with a 'prompt'")
        script, _, faulty = self._take_script("image")
        serial = next(self._serials)
        record = {"received": received, "model": body.get("model"), "stream": False, "kind": "IMAGE",
                  "messages": [{"role": "user", "content": prompt}], "prompt": prompt, "reply": None, "tag": None,
                  "serial": serial, "faulty": faulty, "first_chunk": None, "last_chunk": None, "chunk_times": [],
                  "finished": None, "outcome": "pending", "authorization": request.headers.get("authorization")}
        self.requests.append(record)
        if faulty and script.fail_status:
            record["outcome"] = f"error {script.fail_status}"
            return _error(script.fail_status, "scripted failure")
        if faulty and (script.stall_before_first or script.stall_after is not None):
            await self._stall(record, script.stall_seconds, self._generation)
        await asyncio.sleep(script.image_latency)
        png = scripted_png(serial, prompt, padding=script.image_padding)
        if script.image_reply == "url":
            self._pictures[serial] = png
            picture = {"url": f"{self.url.removesuffix('/v1')}/_pictures/{serial}.png"}
        else:
            picture = {"b64_json": base64.b64encode(png).decode()}
        payload = json.dumps({"created": int(time.time()), "data": [{**picture, "revised_prompt": prompt}]})
        return self._answer(record, payload, faulty and script.drop_after is not None)

    async def _picture(self, request: Request) -> Response:
        png = self._pictures.get(request.path_params["serial"])
        return Response(png, media_type="image/png") if png else _error(404, "no such picture")

    async def _complete(self, record: dict, text: str, script: Script, faulty: bool, model: str):
        if faulty and (script.stall_before_first or script.stall_after is not None):
            await self._stall(record, script.stall_seconds, self._generation)
        await asyncio.sleep((script.helper_latencies or {}).get(record["kind"], script.helper_latency))
        payload = json.dumps({
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion",
            "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": usage(record["messages"], text)})
        return self._answer(record, payload, faulty and script.drop_after is not None)

    def _answer(self, record: dict, payload: str, drop: bool) -> Response:
        """The JSON answer of a non-streamed call, or (drop) half of it and a cut connection."""
        now = time.monotonic()
        record.update(first_chunk=now, last_chunk=now, chunk_times=[now])
        if not drop:
            record.update(finished=now, outcome="ok")
            return Response(payload, media_type="application/json")

        async def truncated():
            yield payload[: len(payload) // 2]
            record["outcome"] = "dropped"
            raise _DeliberateDrop()
        return StreamingResponse(truncated(), media_type="application/json")

    async def _stream(self, record: dict, chunks: list[str], script: Script, faulty: bool,
                      model: str, include_usage: bool):
        generation = self._generation
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:12]}", int(time.time())

        def sse(delta: dict, finish: str | None = None, **extra: Any) -> str:
            choices = [] if extra.get("usage") else [
                {"index": 0, "delta": delta, "finish_reason": finish}]
            return "data: " + json.dumps({"id": cid, "object": "chat.completion.chunk",
                                          "created": created, "model": model,
                                          "choices": choices, **extra}) + "\n\n"

        async def fault_point(sent: int, end: bool = False) -> None:
            # Faults trigger once `sent` content chunks are out (or at the end if N is larger).
            if not faulty:
                return

            def hit(n: int | None) -> bool:
                return n is not None and (n == sent or (end and n > sent))

            if hit(script.stall_after) or (sent == 0 and script.stall_before_first):
                await self._stall(record, script.stall_seconds, generation)
            if hit(script.drop_after):
                record["outcome"] = "dropped"
                raise _DeliberateDrop()

        await asyncio.sleep(script.ttft)
        for sent, piece in enumerate(chunks):
            if sent:
                await asyncio.sleep(script.token_interval)
            await fault_point(sent)
            if faulty and script.flood_after == sent:
                record["outcome"] = "flooded"
                while True:  # until the reader hangs up
                    yield "x" * 65536
                    await asyncio.sleep(0)
            delta = {"role": "assistant", "content": piece} if sent == 0 else {"content": piece}
            now = time.monotonic()
            record["chunk_times"].append(now)
            record["first_chunk"] = record["first_chunk"] or now
            record["last_chunk"] = now
            yield sse(delta)
        await fault_point(len(chunks), end=True)
        yield sse({"content": ""}, "stop")
        if include_usage:
            yield sse({}, usage=usage(record["messages"], "".join(chunks)))
        record.update(finished=time.monotonic(), outcome="ok")
        yield "data: [DONE]\n\n"

    async def _stall(self, record: dict, seconds: float, generation: int) -> None:
        record["outcome"] = "stalled"
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self._generation == generation:
            await asyncio.sleep(min(0.02, max(0.0, deadline - time.monotonic())))
        record["outcome"] = "pending"

    # ---- control endpoints (for a server running as its own process) -----------------------
    async def _script_endpoint(self, request: Request) -> JSONResponse:
        if request.method == "POST":
            try:
                self.script.update(**await request.json())
            except (ValueError, TypeError) as exc:
                return _error(400, str(exc))
        return JSONResponse(dataclasses.asdict(self.script))

    async def _reset_endpoint(self, request: Request) -> JSONResponse:
        self.reset()
        return JSONResponse(dataclasses.asdict(self.script))

    async def _requests_endpoint(self, request: Request) -> JSONResponse:
        return JSONResponse(self.requests)


def _reply(messages: list[dict], script: Script, stream: bool, in_scope: bool) -> tuple[str, str]:
    """(kind, text) of the answer, before any request tag."""
    kind, text = build_reply(messages, script.choices_style, script.inject_html and in_scope,
                             script.story_variants if stream else 1)
    if stream and script.reply_override is not None:
        text = script.reply_override
    if stream and script.stream_replies:
        text = script.stream_replies.pop(0)
    if not stream and kind in (script.helper_replies or {}):
        text = script.helper_replies[kind]
    if stream and script.repeat_loop:
        text = " ".join(["Mira walked on and the path went on and on."] * 40)
    return kind, text


def _error(status: int, message: str) -> JSONResponse:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return JSONResponse({"error": {"message": message, "type": kind, "param": None,
                                   "code": str(status)}}, status_code=status)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--script", default="{}", help='initial knobs as JSON, e.g. {"ttft": 0.3}')
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    server = ScriptedModelServer(args.host, args.port)
    server.script.update(**json.loads(args.script))
    print(f"scripted model listening on {server.url}", flush=True)
    uvicorn.run(server.app, host=args.host, port=args.port, log_level=args.log_level,
                lifespan="off", loop="asyncio")


if __name__ == "__main__":
    main()
