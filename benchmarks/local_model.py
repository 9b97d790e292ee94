"""The embedded local model (LLM_MODEL unset: SmolLM2 run in-process by llama.cpp): time to
first text and tokens per second for one player, and what a second player who starts while
the first one's chapter streams sees. One to two chapters each: the model is slow."""
from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from benchmarks.players import ChapterPage, ChapterRecord, StreamCounter, play_chapter, warm_up
from benchmarks.processes import lanternpath_server, stop_server

TEXT_START = 'id="chapter-text"'
LIMIT = 900.0  # seconds for the whole local measurement
UNSET = {"LLM_MODEL": None, "LLM_API_BASE": None, "LLM_API_KEY": None, "HELPER_MODEL": None,
         "LLM_FALLBACK_MODELS": None}


@dataclass
class PageRead:
    started: float
    first_text: float | None
    ended: float
    page: ChapterPage | None


async def start_and_read(client: httpx.AsyncClient, world: str, topic: str) -> PageRead:
    """POST / then read chapter 1's progressive page, noting when its first text arrives."""
    started = time.monotonic()
    response = await client.post("/", data={"story_category": world, "lesson_topic": topic})
    url = response.headers.get("location", "")
    html, first = "", None
    async with client.stream("GET", url) as page:
        async for text in page.aiter_text():
            html += text
            if first is None and _has_text(html):
                first = time.monotonic()
    return PageRead(started, first, time.monotonic(), ChapterPage.parse(url, html) if url else None)


def _has_text(html: str) -> bool:
    """True once story text follows the opening tag of #chapter-text."""
    at = html.find(TEXT_START)
    end = html.find(">", at) if at >= 0 else -1
    body = html[end + 1:].lstrip() if end >= 0 else ""
    return bool(body) and not body.startswith("<")


def _log_counts(log: Path) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    timeouts = text.count("failed before its first token")
    set_back = text.count("set back: a chapter is streaming")
    return (f"Server log: {timeouts} chapter attempt(s) abandoned for getting no first token within "
            f"FIRST_TOKEN_TIMEOUT (then retried), {set_back} deferred job(s) set back for a stream.")


def _tokens(db: Path) -> dict[tuple[str, int], int]:
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT adventure_id, number, quality FROM chapters").fetchall()
    return {(a, n): json.loads(q or "{}").get("tokens", 0) for a, n, q in rows}


async def two_players(base_url: str) -> tuple[PageRead, ChapterRecord, PageRead]:
    """A plays chapter 1 alone, then chapter 2; B starts once A's chapter 2 shows text."""
    timeout = httpx.Timeout(180.0, connect=30.0)
    async with httpx.AsyncClient(base_url=base_url, timeout=timeout) as a, \
            httpx.AsyncClient(base_url=base_url, timeout=timeout) as b:
        first = await start_and_read(a, "clockwork-harbor", "plants")
        if first.page is None or not first.page.choices:
            raise RuntimeError("the local model's chapter 1 offered no choices")
        await asyncio.sleep(2.0)  # think time; deferred jobs may start and must give way
        shown = asyncio.Event()
        chapter = asyncio.create_task(
            play_chapter(a, 2, first.page.action, first.page.choices[0], StreamCounter(), shown))
        waiter = asyncio.create_task(shown.wait())
        await asyncio.wait([chapter, waiter], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        second = await start_and_read(b, "skyshelf-library", "solar-system")
        return first, await chapter, second


def _row(label: str, start: float, first: float | None, end: float | None, tokens: int, note: str) -> str:
    ttft = "–" if first is None else f"{first - start:.2f} s"
    rate = f"{tokens / (end - first):.1f}" if first and end and end > first and tokens else "–"
    close = "–" if end is None else f"{end - start:.1f} s"
    return f"| {label} | {ttft} | {tokens or '–'} | {rate} | {close} | {note} |"


def local_table(first: PageRead, chapter: ChapterRecord, second: PageRead, tokens: dict) -> str:
    a_id, b_id = (_adventure_id(read) for read in (first, second))
    return "\n".join([
        "## Embedded local model (LLM_MODEL unset: SmolLM2-135M in-process)", "",
        "| | time to first text | tokens | tokens/s | to close | note |", "|---|---:|---:|---:|---:|---|",
        _row("player A, chapter 1 alone (progressive page)", first.started, first.first_text, first.ended,
             tokens.get((a_id, 1), 0), "first chapter of a fresh server (loads the model)"),
        _row("player A, chapter 2 (htmx)", chapter.posted, chapter.first_chunk, chapter.closed,
             tokens.get((a_id, 2), 0), chapter.error or "ok"),
        _row("player B starts while A's chapter 2 streams", second.started, second.first_text, second.ended,
             tokens.get((b_id, 1), 0), "waits for A: one llama.cpp worker serves one stream at a time"),
        "", "",
    ])


def _adventure_id(read: PageRead | None) -> str:
    url = read.page.url if read and read.page else ""
    return url.split("/adventures/")[-1].split("/")[0]


def measure_local(workdir: Path) -> str:
    warm_up()
    server = lanternpath_server(workdir, "bench-local", UNSET)
    try:
        first, chapter, second = asyncio.run(asyncio.wait_for(two_players(server.base_url), LIMIT))
        error = None
    except (TimeoutError, RuntimeError, httpx.HTTPError) as exc:
        first = chapter = second = None
        error = f"{type(exc).__name__}: {exc}"
    finally:
        stop_server(server, timeout=60)
    if error:
        return f"## Embedded local model\n\nNot measured: {error}\n"
    table = local_table(first, chapter, second, _tokens(workdir / "bench-local.db"))
    return table + _log_counts(workdir / "bench-local.log") + "\n"
