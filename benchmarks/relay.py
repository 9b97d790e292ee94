"""The bare relay: the least a server on this stack can do for a streamed chapter. A minimal
Starlette + sse-starlette app that forwards each model token as one SSE `chunk` event and
does nothing else: no store, no filters, no jobs. It answers the virtual players' requests
in the same shapes as Lanternpath (start, chapter page, htmx choice, stream), so the same
players and the same scripted model measure it, and its CPU per token is the floor.

    python -m benchmarks.relay --port 8200 --model http://127.0.0.1:8100/v1
"""
from __future__ import annotations

import argparse
import asyncio
import itertools

import aiohttp
import uvicorn
from markupsafe import escape
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from service.llm.openai_http import event_texts

CHOICES = ("Go left", "Go right", "Wait")
_END = object()


def _choices(adventure: str, number: int) -> str:
    buttons = "".join(f'<button type="submit" name="choice" value="{c}">{c}</button>' for c in CHOICES)
    return f'<form method="post" action="/a/{adventure}/chapters/{number}/choice">{buttons}</form>'


class Relay:
    def __init__(self, model_url: str):
        self.chat_url = f"{model_url.rstrip('/')}/chat/completions"
        self.ids = itertools.count(1)
        self.streams: dict[str, asyncio.Queue] = {}
        self.http: aiohttp.ClientSession | None = None

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/", lambda request: HTMLResponse("relay"), methods=["GET"]),
            Route("/", self.start, methods=["POST"]),
            Route("/a/{adventure}/chapters/{number:int}", self.page, methods=["GET"]),
            Route("/a/{adventure}/chapters/{number:int}/choice", self.choose, methods=["POST"]),
            Route("/a/{adventure}/chapters/{number:int}/stream", self.stream, methods=["GET"]),
        ])

    async def start(self, request: Request) -> Response:
        return RedirectResponse(f"/a/{next(self.ids)}/chapters/1", status_code=303)

    async def page(self, request: Request) -> Response:
        adventure, number = request.path_params["adventure"], request.path_params["number"]
        return HTMLResponse(f'<div id="chapter-text">Once upon a time.</div>'
                            f'<div id="choices">{_choices(adventure, number)}</div>')

    async def choose(self, request: Request) -> Response:
        """The model is asked at once; its tokens queue until the stream reads them."""
        adventure, number = request.path_params["adventure"], request.path_params["number"] + 1
        key = f"{adventure}/{number}"
        self.streams[key] = queue = asyncio.Queue()
        asyncio.get_running_loop().create_task(self._ask(queue))
        url = f"/a/{adventure}/chapters/{number}/stream"
        return HTMLResponse(f'<div hx-ext="sse" sse-connect="{url}"></div>')

    async def _ask(self, queue: asyncio.Queue) -> None:
        if self.http is None:
            self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1000, keepalive_timeout=3))
        body = {"model": "scripted", "stream": True, "max_tokens": 700,
                "messages": [{"role": "user", "content": "CHAPTER TYPE: STORY"}]}
        try:
            async with self.http.post(self.chat_url, json=body) as response:
                # The model's events are read as Lanternpath reads them (the same decoder).
                async for delta in event_texts(response):
                    queue.put_nowait(delta)
        finally:
            queue.put_nowait(_END)

    async def stream(self, request: Request) -> Response:
        key = f"{request.path_params['adventure']}/{request.path_params['number']}"
        queue = self.streams.pop(key)
        adventure, number = request.path_params["adventure"], request.path_params["number"]

        async def events():
            for event_id in itertools.count(1):
                token = await queue.get()
                if token is _END:
                    break
                yield ServerSentEvent(data=str(escape(token)), event="chunk", id=str(event_id))
            yield ServerSentEvent(data=_choices(adventure, number), event="choices")
            yield ServerSentEvent(data="done", event="close")

        return EventSourceResponse(events(), ping=15)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.relay", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8200)
    parser.add_argument("--model", required=True, help="the scripted model's /v1 URL")
    args = parser.parse_args(argv)
    uvicorn.run(Relay(args.model).app(), host=args.host, port=args.port, log_level="warning", lifespan="off")


if __name__ == "__main__":
    main()
