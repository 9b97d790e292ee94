"""From raw records to the numbers of one table row: percentiles of the time the server
adds to the model's own timing (each chapter against the model request its first chunk's
tag names), memory per open stream, and the old sequential flow's time to first text
computed from the same scripted timings."""
from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field, fields
from itertools import pairwise

from benchmarks.load import TIMINGS, LevelResult
from benchmarks.players import ChapterRecord
from tests.support.scripted_replies import find_request_tag

REPLAY_WORD = 0.020  # the old apps replayed a finished reply at 20 ms a word
CORES = os.cpu_count() or 1
# What a comparison of two settings looks at: (the Row's field, its name in tables and plots).
COMPARED = (("added_first", "added first text"), ("added_gap", "worst added gap"))


def players_text(players: int) -> str:
    """"1 player", "50 players"."""
    return f"{players} player{'s' * (players > 1)}"


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def old_way_first_text(chunks: int) -> float:
    """Summary call, character call, the whole reply, then the first replayed word."""
    return (2 * TIMINGS["helper_latency"] + TIMINGS["ttft"]
            + chunks * TIMINGS["token_interval"] + REPLAY_WORD)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in pairwise(times)]


def finished(level: LevelResult) -> list[ChapterRecord]:
    return [r for r in level.records if r.error is None and r.first_chunk and r.closed]


def _tagged_streams(model_log: list[dict]) -> dict[str, dict]:
    return {q["tag"]: q for q in model_log if q.get("tag") and q["first_chunk"]}


def own_requests(chapters: list[ChapterRecord], model_log: list[dict]) -> list[tuple[ChapterRecord, dict]]:
    """Each chapter paired with the model request whose tag opened its first chunk; a chapter
    whose tag names no request is left out (the caller counts it as unmatched)."""
    by_tag = _tagged_streams(model_log)
    return [(r, by_tag[r.tag]) for r in chapters if r.tag in by_tag]


def _unmatched_kinds(level: LevelResult) -> Counter:
    tags = _tagged_streams(level.model_log)
    return Counter("unmatched: first chunk carries no request tag" if r.tag is None
                   else "unmatched: tag names no model request" for r in finished(level) if r.tag not in tags)


def added_first_text(chapter: ChapterRecord, request: dict) -> float:
    """The player's wait from the choice POST to the first chunk, less this request's own
    wait in the model from receiving it to sending its first token. Each interval is taken
    within one process, so neither depends on the two processes' clocks agreeing."""
    return (chapter.first_chunk - chapter.posted) - (request["first_chunk"] - request["received"])


def added_worst_gap(chapter: ChapterRecord, request: dict) -> float | None:
    """The worst gap between the player's chunk events less the worst gap between this
    request's own chunk sends in the model; None when either saw fewer than two chunks."""
    seen, sent = _gaps(chapter.chunk_times), _gaps(request["chunk_times"])
    return max(seen) - max(sent) if seen and sent else None


@dataclass
class Row:
    players: int
    chapters_ok: int
    errors: int
    unmatched: int             # finished chapters whose first chunk's tag names no model request
    first_text: list[float]    # seconds from the choice POST to the first chunk
    added_first: list[float]   # the same minus that chapter's own model TTFT (added_first_text)
    added_gap: list[float]     # per chapter: added_worst_gap, against the model's own worst gap
    nominal_first: list[float]  # first_text minus the TTFT setting (300 ms)
    nominal_gap: list[float]   # per chapter: worst gap between chunks minus token_interval
    close: list[float]
    post: list[float]          # the choice POST's own round trip
    peak_streams: int
    rss_peak_mb: float
    rss_per_stream_mb: float
    marginal_kb: float         # (RSS at peak streams - idle RSS) / streams
    server_cpu: float          # mean % of one core while streams were open
    model_cpu: float           # the scripted model process, the same way
    players_cpu: float         # the players' (measuring) process
    others_cores: float        # cores used by everything else on the machine (other users)
    client_lag_p99: float
    model_ttft: list[float]    # the scripted model's own measured first-token times
    model_gap: list[float]     # its own worst gap per stream, minus token_interval
    old_first_text: list[float]
    # With pictures: from the chapter's `close` to its picture's bytes at the player.
    picture_after_close: list[float] = field(default_factory=list)
    server: str = "lanternpath"
    cpu_seconds: float = 0.0   # the server's processes, user + system, while the players played and
    #                            then while it ran the deferred jobs still queued when they stopped
    jobs_cpu_seconds: float = 0.0  # of cpu_seconds, the part after the players stopped
    jobs_backlog: int = 0      # deferred jobs pending or running when the players stopped
    cpu_parts: dict[str, float] = field(default_factory=dict)  # cpu_seconds by processes.CPU_PARTS
    tokens: int = 0            # streamed model tokens (chunks) the server relayed
    streamed: int = 0          # streamed model requests (chapters written, chapter 1 included)

    @property
    def cpu_per_chapter_ms(self) -> float | None:
        """All of the server's CPU divided by the chapters it wrote (ms): the same players
        and chapters cost the same work, so between runs of one level this moves with the
        machine's own speed."""
        return self.cpu_seconds / self.streamed * 1e3 if self.streamed else None

    def cpu_part_per_chapter_ms(self, part: str) -> float | None:
        """One part of cpu_per_chapter_ms (processes.CPU_PARTS)."""
        return self.cpu_parts[part] / self.streamed * 1e3 if self.streamed and part in self.cpu_parts else None

    @property
    def cpu_per_token_us(self) -> float | None:
        """All of the server's CPU divided by the tokens it relayed (µs)."""
        return self.cpu_seconds / self.tokens * 1e6 if self.tokens else None

    def p(self, name: str, q: float) -> float | None:
        return percentile(getattr(self, name), q)

    @property
    def ratio_p50(self) -> float | None:
        old, new = self.p("old_first_text", 50), self.p("first_text", 50)
        return old / new if old and new else None

    @property
    def ratio_worst(self) -> float | None:
        old, new = self.p("old_first_text", 0), self.p("first_text", 99)
        return old / new if old and new else None


def _chapter_timings(level: LevelResult) -> dict:
    ok = finished(level)
    pairs = own_requests(ok, level.model_log)
    first = [r.first_chunk - r.posted for r in ok]
    return dict(
        chapters_ok=len(ok), unmatched=len(ok) - len(pairs),
        errors=sum(1 for r in level.records if r.error) + level.timed_out,
        first_text=first, nominal_first=[t - TIMINGS["ttft"] for t in first],
        added_first=[added_first_text(r, q) for r, q in pairs],
        added_gap=[gap for r, q in pairs if (gap := added_worst_gap(r, q)) is not None],
        nominal_gap=[max(_gaps(r.chunk_times)) - TIMINGS["token_interval"] for r in ok if len(r.chunk_times) > 1],
        close=[r.closed - r.posted for r in ok],
        picture_after_close=[r.picture_visible - r.closed for r in ok if r.picture_visible],
        post=[r.answered - r.posted for r in ok if r.answered],
    )


def _model_timings(level: LevelResult) -> dict:
    streams = [q for q in level.model_log if q["stream"] and q["first_chunk"]]
    return dict(
        model_ttft=[q["first_chunk"] - q["received"] for q in streams],
        model_gap=[max(_gaps(q["chunk_times"])) - TIMINGS["token_interval"]
                   for q in streams if len(q["chunk_times"]) > 1],
        old_first_text=[old_way_first_text(len(q["chunk_times"])) for q in streams],
    )


def _resources(level: LevelResult) -> dict:
    busy = [s for s in level.samples if s.streams > 0] or level.samples
    peak = max(level.samples, key=lambda s: (s.streams, s.rss), default=None)
    n = peak.streams if peak and peak.streams else 1
    return dict(
        peak_streams=peak.streams if peak else 0,
        rss_peak_mb=max((s.rss for s in level.samples), default=0) / 1e6,
        rss_per_stream_mb=(peak.rss / n / 1e6) if peak else 0.0,
        marginal_kb=((peak.rss - level.idle_rss) / n / 1e3) if peak else 0.0,
        server_cpu=_mean([s.cpu for s in busy]),
        model_cpu=_mean([s.others.get("model", 0.0) for s in busy]),
        # The players' side: their process and the one following their pictures.
        players_cpu=_mean([s.others.get("players", 0.0) + s.others.get("pictures", 0.0) for s in busy]),
        others_cores=_mean([s.machine * CORES - s.cpu - sum(s.others.values()) for s in busy]) / 100,
    )


def _cpu(level: LevelResult) -> dict:
    streams = [q for q in level.model_log if q["stream"]]
    return dict(server=level.server, cpu_seconds=level.cpu_seconds, jobs_cpu_seconds=level.jobs_cpu_seconds,
                jobs_backlog=level.jobs_backlog, cpu_parts=dict(level.cpu_parts),
                tokens=sum(len(q["chunk_times"]) for q in streams), streamed=len(streams))


def summarize(level: LevelResult) -> Row:
    return Row(players=level.players, client_lag_p99=percentile(level.client_lag, 99) or 0.0,
               **_chapter_timings(level), **_model_timings(level), **_resources(level), **_cpu(level))


def pooled(rows: list[Row]) -> Row:
    """Several runs of one level as one row: their chapters' timings together, their counts
    and CPU added up, their resource means averaged (runs of a level vary by more than the
    few milliseconds a comparison looks for: one run's p50 moved by 5-15 ms here)."""
    values = {}
    for spec in fields(Row):
        got = [getattr(row, spec.name) for row in rows]
        if isinstance(got[0], list):
            values[spec.name] = [v for one in got for v in one]
        elif isinstance(got[0], dict):  # CPU by part: added up where every run has the part
            values[spec.name] = {part: sum(one[part] for one in got) for part in set.intersection(*map(set, got))}
        elif spec.name in ("players", "server", "peak_streams"):
            values[spec.name] = max(got)
        elif isinstance(got[0], int) or spec.name in ("cpu_seconds", "jobs_cpu_seconds"):
            values[spec.name] = sum(got)
        else:
            values[spec.name] = sum(got) / len(got)
    return Row(**values)


def token_and_chapter_cpu(short: Row, long: Row) -> tuple[float, float] | None:
    """(µs per token, ms per chapter) from two runs of the same players and chapters, the
    second with longer chapters (more tokens each): everything done once per chapter is the
    same in both, so the difference in CPU is what the extra tokens cost, all the work that
    grows with the text included; what is left of a run's CPU is the chapters' own."""
    tokens = long.tokens - short.tokens
    if tokens <= 0 or not short.streamed:
        return None
    per_token = (long.cpu_seconds - short.cpu_seconds) / tokens
    per_chapter = (short.cpu_seconds - per_token * short.tokens) / short.streamed
    return per_token * 1e6, per_chapter * 1e3


def error_kinds(level: LevelResult) -> str:
    """"3× choice answered 500, 2× stream ended without close": what the errors (and the
    unmatched chapters) were."""
    kinds = Counter(r.error[:70] for r in level.records if r.error) + _unmatched_kinds(level)
    if level.timed_out:
        kinds["player still playing at the level's time limit"] = level.timed_out
    return ", ".join(f"{n}× {kind}" for kind, n in kinds.most_common())


def first_text_breakdown(level: LevelResult) -> dict[str, float | None]:
    """The steps from a choice's POST to its chapter's first chunk at the player, p50 in ms
    (with one player nothing else runs at the same time: the added time, step by step)."""
    pairs = [(r, q) for r, q in own_requests(finished(level), level.model_log) if r.answered]
    ms = lambda values: percentile([v * 1e3 for v in values], 50)  # noqa: E731
    return {
        "choice POST round trip": ms([r.answered - r.posted for r, _ in pairs]),
        "choice POST to the model's request": ms([q["received"] - r.posted for r, q in pairs]),
        "model's own first token": ms([q["first_chunk"] - q["received"] for _, q in pairs]),
        "model's first token to the player's first chunk": ms([r.first_chunk - q["first_chunk"] for r, q in pairs]),
    }


def picture_breakdown(level: LevelResult) -> dict[str, tuple[float, float] | None]:
    """Where a picture's time after its chapter's `close` goes, p50 and p99 in ms: each chapter
    matched to its scene's helper call and image request by the chapter's request tag, which
    its scene (and so the image prompt) quotes."""
    log = level.model_log
    helper = {q["tag_seen"]: q for q in _quoting(log, "PICTURE")}
    images = {q["tag_seen"]: q for q in _quoting(log, "IMAGE")}
    rows = [(r, helper[r.tag], images[r.tag]) for r in finished(level)
            if r.picture_visible and r.tag in helper and r.tag in images]

    def ms(values):
        values = [v * 1e3 for v in values]
        return (percentile(values, 50), percentile(values, 99)) if values else None

    return {
        "close to the scene's helper call": ms([h["received"] - r.closed for r, h, _ in rows]),
        "the helper's own reply": ms([h["finished"] - h["received"] for _, h, _ in rows]),
        "helper reply to the image request": ms([i["received"] - h["finished"] for _, h, i in rows]),
        "the image model's own time": ms([i["finished"] - i["received"] for _, _, i in rows]),
        "image reply to the picture event at the player": ms([r.picture_event - i["finished"] for r, _, i in rows]),
        "picture event to its bytes at the player": ms([r.picture_visible - r.picture_event for r, _, _ in rows]),
        "close to visible": ms([r.picture_visible - r.closed for r, _, _ in rows]),
    }


def _quoting(log: list[dict], kind: str) -> list[dict]:
    """The requests of a kind, each with the chapter tag ("r17") its text quotes."""
    found = []
    for request in log:
        if request.get("kind") == kind and request.get("finished"):
            text = " ".join(m.get("content", "") for m in request["messages"])
            if (tag := find_request_tag(text)) is not None:
                found.append({**request, "tag_seen": tag})
    return found
