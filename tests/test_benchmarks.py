"""The benchmark's measurement: each chapter is matched to its own scripted model request by
the tag that opens the reply, and the server's added time is taken against that request's
measured timing, not the nominal settings."""
from __future__ import annotations

import asyncio
import os
import sys
import time

import httpx
import psutil
import pytest
from markupsafe import escape

from benchmarks.load import LevelResult, wait_for_jobs
from benchmarks.pairs import paired_change, paired_lines, turn_order
from benchmarks.pictures import PictureFollower, page_stream
from benchmarks.players import ChapterRecord, StreamCounter, begin, play_chapter
from benchmarks.processes import ServerCores, set_cores_of_every_thread
from benchmarks.stats import (
    Row,
    error_kinds,
    picture_breakdown,
    pooled,
    summarize,
    token_and_chapter_cpu,
)
from service.domain.stream_text import VisibleText
from service.runtime import create_app
from tests.conftest import picture_settings, scripted_settings
from tests.support import player
from tests.support.database import rows
from tests.support.live_server import LiveServer
from tests.support.player import choices_from_html
from tests.support.scripted_replies import build_reply, find_request_tag, split_chunks, story_replies, tag_first_chunk
from tests.support.server_process import ServerProcess


@pytest.mark.parametrize("chapter", ["STORY", "REFLECT", "LESSON", "CONCLUSION"])
@pytest.mark.parametrize("tag", ["r1", "r17", "r12345"])
def test_the_request_tag_reaches_the_first_chunk_through_the_servers_text_filters(chapter, tag):
    _, reply = build_reply([{"role": "user", "content": f"CHAPTER TYPE: {chapter}"}])
    first_token = tag_first_chunk(split_chunks(reply), tag)[0]
    shown = str(escape(VisibleText().feed(first_token)))
    assert shown.startswith(f"[{tag}] "), f"the first chunk the player gets is {shown!r}"
    assert find_request_tag(shown) == tag


def model_request(tag: str, received: float, chunk_times: list[float]) -> dict:
    return {"tag": tag, "stream": True, "received": received, "first_chunk": chunk_times[0],
            "chunk_times": chunk_times}


def chapter(tag: str | None, posted: float, chunk_times: list[float]) -> ChapterRecord:
    return ChapterRecord(2, posted, answered=posted + 0.02, first_chunk=chunk_times[0], tag=tag,
                         chunk_times=chunk_times, closed=chunk_times[-1] + 0.01)


def level(chapters: list[ChapterRecord], model_log: list[dict]) -> LevelResult:
    return LevelResult(1, 1, chapters, samples=[], model_log=model_log, client_lag=[], wall=1.0)


def test_added_times_are_taken_against_the_chapters_own_model_request():
    # The model took 350 ms to its first token (not the nominal 300) and 50 ms at worst
    # between chunks (not 20); another request in the log must not be the one used.
    model_log = [model_request("r1", 10.0, [10.35, 10.37, 10.42]),
                 model_request("r2", 20.0, [20.30, 20.32])]
    row = summarize(level([chapter("r1", 9.9, [10.4, 10.43, 10.5])], model_log))
    assert row.added_first == pytest.approx([0.5 - 0.35])
    assert row.added_gap == pytest.approx([0.07 - 0.05])
    assert row.nominal_first == pytest.approx([0.5 - 0.3])
    assert row.nominal_gap == pytest.approx([0.07 - 0.02])
    assert row.unmatched == 0


def test_a_chapter_without_a_matching_tag_counts_as_unmatched_not_dropped():
    model_log = [model_request("r1", 10.0, [10.3, 10.32])]
    chapters = [chapter("r9", 9.9, [10.4, 10.42]), chapter(None, 9.9, [10.4, 10.42])]
    result = level(chapters, model_log)
    row = summarize(result)
    assert (row.chapters_ok, row.unmatched, row.added_first) == (2, 2, [])
    assert len(row.nominal_first) == 2
    assert "1× unmatched: tag names no model request" in error_kinds(result)
    assert "1× unmatched: first chunk carries no request tag" in error_kinds(result)


def _quoted(kind: str, tag: str, received: float, finished: float) -> dict:
    return {"kind": kind, "received": received, "finished": finished,
            "messages": [{"role": "user", "content": f"Scene: [{tag}] Mira at the bridge."}]}


def test_a_pictures_time_after_close_is_split_into_its_stages_at_p50_and_p99():
    chapters = []
    for n in range(1, 101):  # chapter n's helper call begins n ms after its close
        record = chapter(f"r{n}", 1.0 * n, [1.0 * n + 0.1])
        record.picture_event, record.picture_visible = record.closed + 3.6, record.closed + 3.61
        chapters.append(record)
    model_log = [entry for n, record in enumerate(chapters, 1)
                 for entry in (_quoted("PICTURE", f"r{n}", record.closed + n / 1e3, record.closed + 0.5),
                               _quoted("IMAGE", f"r{n}", record.closed + 0.55, record.closed + 3.55))]
    stages = picture_breakdown(level(chapters, model_log))
    assert stages["close to the scene's helper call"] == pytest.approx((50.5, 99.01))
    assert stages["helper reply to the image request"] == pytest.approx((50.0, 50.0))
    assert stages["the image model's own time"] == pytest.approx((3000.0, 3000.0))
    assert stages["close to visible"] == pytest.approx((3610.0, 3610.0))


def test_no_picture_seen_gives_no_stages():
    assert set(picture_breakdown(level([chapter("r1", 1.0, [1.1])], [])).values()) == {None}


def test_the_filters_benchmark_times_every_stage_without_changing_what_the_filter_gives():
    from benchmarks import filters

    rules = filters.ChildSafety(filters.load_lexicon()).chapter_rules(
        filters.ChapterBrief(world=filters.load_catalog().worlds["clockwork-harbor"], topic_name="Plants",
                             number=3, type=filters.ChapterType.STORY))
    for text in story_replies():
        pieces = split_chunks(text, chunk_chars=3)
        spent = {name: 0 for name in filters.STAGES}
        clocked, plain = filters._filter(rules, spent), VisibleText(rules=rules)
        shown = ["".join(v.feed(piece) for piece in pieces) + v.finish() for v in (clocked, plain)]
        assert shown[0] == shown[1] and clocked.text == plain.text
        assert "<CHOICES>" in text and "<CHOICES>" not in clocked.text
        assert all(spent[name] > 0 for name in filters.STAGES), spent
    results = filters.measure(rounds=1)
    assert set(results) == set(filters.CHUNKINGS)
    words = results["word tokens"]
    assert words["tokens"] == sum(len(split_chunks(text)) for text in story_replies())
    assert results["3-character slices"]["tokens"] > words["tokens"]
    assert all(words[name] > 0 for name in ("whole", *filters.STAGES))


def _cpu_row(tokens: int, cpu_seconds: float, streamed: int) -> Row:
    row = summarize(level([], []))
    row.tokens, row.cpu_seconds, row.streamed = tokens, cpu_seconds, streamed
    return row


def test_the_cpu_of_longer_chapters_is_split_into_a_cost_per_token_and_a_cost_per_chapter():
    # 100 chapters at 5 ms each, and 200 µs a token: 20 000 tokens, then 40 000.
    short, long = _cpu_row(20_000, 0.5 + 4.0, 100), _cpu_row(40_000, 0.5 + 8.0, 100)
    per_token_us, per_chapter_ms = token_and_chapter_cpu(short, long)
    assert per_token_us == pytest.approx(200) and per_chapter_ms == pytest.approx(5)
    assert short.cpu_per_token_us == pytest.approx(225)


def test_runs_of_a_level_are_pooled_chapter_by_chapter_with_their_counts_added_up():
    first = summarize(level([chapter("r1", 9.9, [10.4, 10.43])], [model_request("r1", 10.0, [10.35, 10.37])]))
    second = summarize(level([chapter("r1", 19.9, [20.6, 20.62]), chapter("r2", 29.9, [30.5, 30.52])],
                             [model_request("r1", 20.0, [20.3, 20.32]), model_request("r2", 30.0, [30.3, 30.32])]))
    first.cpu_seconds, second.cpu_seconds = 1.5, 2.0
    row = pooled([first, second])
    assert row.added_first == pytest.approx([0.5 - 0.35, 0.7 - 0.3, 0.6 - 0.3])
    assert (row.players, row.chapters_ok, row.cpu_seconds) == (1, 3, 3.5)
    assert row.p("added_first", 50) == pytest.approx(0.3)


def test_the_benchmark_waits_for_the_deferred_jobs_still_queued_when_the_players_stop(scripted_model, database_url):
    # No job workers: chapter 1's summary and characters stay pending until they are ended
    # here, and the wait gives up at its limit, saying how many are left.
    with LiveServer(create_app(scripted_settings(scripted_model, database_url, job_concurrency=0))) as live:
        with httpx.Client(base_url=live.base_url, timeout=30) as client:
            player.read_chapter(client, player.start(client, "capwood-hollow", "solar-system"))
        queued = len(rows(database_url, "SELECT id FROM jobs WHERE state = 'pending'"))
        assert queued >= 2
        assert wait_for_jobs(database_url, limit=0.6) == (queued, queued)
        rows(database_url, "UPDATE jobs SET state = 'done'")
        assert wait_for_jobs(database_url, limit=0.6) == (0, 0)


def test_jobs_cpu_and_backlog_are_added_up_when_runs_are_pooled():
    first, second = _cpu_row(100, 1.0, 2), _cpu_row(100, 2.0, 2)
    first.jobs_cpu_seconds, first.jobs_backlog, second.jobs_cpu_seconds, second.jobs_backlog = 0.25, 3, 0.5, 4
    row = pooled([first, second])
    assert (row.cpu_seconds, row.jobs_cpu_seconds, row.jobs_backlog) == (3.0, 0.75, 7)


def _run(added_first_ms: list[float], cpu_seconds: float = 1.0) -> Row:
    """One run's row: chapters whose added first text is each of `added_first_ms`."""
    row = _cpu_row(100, cpu_seconds, 10)
    row.added_first = [ms / 1e3 for ms in added_first_ms]
    row.added_gap = [0.005] * len(added_first_ms)
    return row


def test_a_variants_change_is_taken_pair_by_pair_with_its_confidence_interval():
    # The runs drift together (the base's p50 goes 30, 60, 45 ms): within each pair the
    # variant is 1, 2 and 3 ms slower, a change of 2 ms whose interval (t, 2 degrees of
    # freedom) is 2 ± 4.30 × 0.577 ms.
    base = [_run([20, 30, 40]), _run([50, 60, 70]), _run([35, 45, 55])]
    variant = [_run([21, 31, 41]), _run([52, 62, 72]), _run([38, 48, 58])]
    change = paired_change(base, variant, "added_first")
    assert change.differences == pytest.approx([0.001, 0.002, 0.003])
    assert change.mean == pytest.approx(0.002)
    assert (change.low, change.high) == pytest.approx((0.002 - 0.002484, 0.002 + 0.002484), abs=1e-6)
    assert not change.within(0.002) and change.within(0.005)


def test_no_change_is_shown_from_a_single_pair_and_an_unspread_one_is_exact():
    assert paired_change([_run([30])], [_run([31])], "added_first") is None
    same = paired_change([_run([30]), _run([40])], [_run([30]), _run([40])], "added_first")
    assert (same.mean, same.low, same.high) == (0.0, 0.0, 0.0) and same.within(0.002)


def test_a_comparison_says_pair_by_pair_whether_the_change_is_within_two_milliseconds():
    runs = {"off": [_run([30], cpu_seconds=0.4), _run([50], cpu_seconds=0.5)],
            "on": [_run([30.5], cpu_seconds=0.45), _run([50.3], cpu_seconds=0.5)]}
    first, gap, cpu = paired_lines(50, runs)
    assert first.startswith("- 50 players, added first text p50, on − off pair by pair: +0.5, +0.3 ms")
    assert "mean +0.4 ms" in first and first.endswith("within ±2 ms")
    assert gap.endswith("within ±2 ms") and "+0.0, +0.0 ms" in gap
    assert cpu == "- 50 players, the server's CPU per chapter, run by run: off 40, 50; on 45, 50 ms"
    runs["on"][1] = _run([80])
    assert paired_lines(50, runs)[0].endswith("not shown within ±2 ms")
    assert paired_lines(50, {"off": runs["off"][:1], "on": runs["on"][:1]}) == []



def test_a_comparison_splits_each_runs_server_cpu_into_its_loop_its_threads_and_its_children():
    runs = {"off": [_run([30], cpu_seconds=0.4), _run([50], cpu_seconds=0.5)],
            "on": [_run([30.5], cpu_seconds=0.45), _run([50.3], cpu_seconds=0.5)]}
    assert len(paired_lines(50, runs)) == 3, "a split was printed for runs that measured none"
    for variant_rows, loops in ((runs["off"], (0.2, 0.3)), (runs["on"], (0.25, 0.3))):
        for row, loop in zip(variant_rows, loops, strict=True):
            row.cpu_parts = {"event loop": loop, "other threads": 0.1, "child processes": row.cpu_seconds - loop - 0.1}
    parts = paired_lines(50, runs)[-1]
    assert parts == ("- 50 players, of which, run by run: "
                     "off: event loop 20, 30, other threads 10, 10, child processes 10, 10; "
                     "on: event loop 25, 30, other threads 10, 10, child processes 10, 10 ms")
    assert pooled(runs["on"]).cpu_parts == pytest.approx(
        {"event loop": 0.55, "other threads": 0.2, "child processes": 0.2})


def test_the_cpu_of_a_thread_beside_the_main_one_counts_as_the_process_s_other_threads():
    import threading

    from benchmarks.processes import cpu_parts

    def spin(seconds: float) -> None:
        end = time.thread_time() + seconds
        while time.thread_time() < end:
            pass

    def work_then_wait(spun: threading.Event, done: threading.Event) -> None:
        spin(0.3)
        spun.set()
        done.wait(30)  # its CPU counts only while it lives

    before, spun, done = cpu_parts(os.getpid()), threading.Event(), threading.Event()
    worker = threading.Thread(target=work_then_wait, args=(spun, done))
    worker.start()
    spin(0.1)
    assert spun.wait(30), "the worker did not spin"  # a wait, not a poll: it costs the main thread nothing
    after = cpu_parts(os.getpid())
    done.set()
    worker.join(30)
    assert after["other threads"] - before["other threads"] >= 0.29
    assert 0.09 <= after["event loop"] - before["event loop"] < 0.29, "the worker's CPU counted as the main thread's"
    assert after["child processes"] == pytest.approx(before["child processes"])

def test_the_variants_take_turns_in_one_order_then_the_other():
    variants = {"off": {}, "on": {"IMAGE_MODEL": "openai/scripted-images"}}
    assert [[label for label, _ in turn_order(variants, turn)] for turn in range(4)] == [
        ["off", "on"], ["on", "off"], ["off", "on"], ["on", "off"]]


@pytest.mark.usefixtures("litellm_loaded")
async def test_a_players_picture_is_followed_in_a_process_of_its_own_and_fills_in_the_chapters_record(
    scripted_model, database_url
):
    # The players' loop takes the timestamps of the text's streams: the pictures' streams and
    # requests run in another process, and only what was seen comes back into the record.
    settings = picture_settings(scripted_model, database_url)
    scripted_model.script.update(image_latency=1.0)
    with LiveServer(create_app(settings)) as live:
        async with httpx.AsyncClient(base_url=live.base_url, timeout=30) as client:
            page = await begin(client, "capwood-hollow", "solar-system", StreamCounter())
            followers: list = []
            follower = await PictureFollower(live.base_url).start()
            try:
                # One stream for the page, opened once it has loaded, as a browser does.
                pictures = follower.follow_page(dict(client.cookies), page_stream(page.html))
                records, action, choices = [], page.action, page.choices
                for number in (2, 3):  # on at once, long before chapter 2's picture: it is left behind
                    records.append(await play_chapter(client, number, action, choices[0], StreamCounter(),
                                                      followers=followers, follower=follower, page=pictures))
                    action, choices = choices_from_html(records[-1].choices_html)
                assert [r.error for r in records] == [None, None] and len(followers) == 2
                assert await asyncio.wait_for(followers[0], 30) is records[0]
                assert await asyncio.wait_for(followers[1], 30) is records[1]
            finally:
                await follower.stop()
    assert follower.pid != os.getpid()
    left, record = records
    assert left.picture_event is None and left.picture_error is None, "a picture seen for a chapter the page left"
    assert record.picture_error is None
    assert record.closed < record.picture_event <= record.picture_visible
    image_requests = [r for r in scripted_model.requests if r["kind"] == "IMAGE"]
    assert record.picture_serial in [r["serial"] for r in image_requests], "the bytes seen are not a drawn picture's"


# A server with two background processes, one niced below it (as the picture process and the
# screening worker are) and one not (as a worker of `serve --workers` is), answering on --port.
_SERVER_WITH_CHILDREN = """
import http.server, subprocess, sys
children = [subprocess.Popen(["nice", "-n", "10", "sleep", "120"]), subprocess.Popen(["sleep", "120"])]
port = int(sys.argv[sys.argv.index("--port") + 1])
http.server.ThreadingHTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def _cores(pid: int) -> set[int]:
    return os.sched_getaffinity(pid)


def _server_with_children(tmp_path) -> ServerProcess:
    return ServerProcess({}, tmp_path / "server.log", command=[sys.executable, "-c", _SERVER_WITH_CHILDREN])


def test_a_core_of_its_own_takes_the_servers_process_and_leaves_the_rest_to_all_else(tmp_path):
    mine = os.sched_getaffinity(0)
    cores = ServerCores()
    if len(mine) < 2:
        with pytest.raises(SystemExit):
            cores.keep_one()
        return
    try:
        cores.keep_one()
        server_core, others = {min(mine)}, mine - {min(mine)}
        assert cores.server == server_core
        assert os.sched_getaffinity(0) == others  # the players; and the model and the follower it starts
        # The players' loop runs first where real-time priority is allowed (to root, at least).
        assert cores.players_first == (os.sched_getscheduler(0) & ~os.SCHED_RESET_ON_FORK == os.SCHED_FIFO)
        assert cores.players_first or os.geteuid() != 0
        server = cores.start(_server_with_children(tmp_path), timeout=60)
        try:
            root = psutil.Process(server.process.pid)
            niced, plain = root.children()
            assert _cores(server.process.pid) == server_core
            assert _cores(plain.pid) == server_core
            assert _cores(niced.pid) == others
            # The players' loop runs first, and what it is told to (the model): nothing else it starts.
            assert {os.sched_getscheduler(p.pid) for p in (root, niced, plain)} == {os.SCHED_OTHER}
            assert cores.run_first(plain.pid) == cores.players_first
            assert os.sched_getscheduler(plain.pid) & ~os.SCHED_RESET_ON_FORK == (
                os.SCHED_FIFO if cores.players_first else os.SCHED_OTHER)
        finally:
            server.stop()
        assert os.sched_getaffinity(0) == others
        assert f"core {min(mine)} alone" in cores.describe()
    finally:
        set_cores_of_every_thread(mine)
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def test_without_a_core_of_its_own_the_server_shares_every_core(tmp_path):
    cores = ServerCores()
    server = cores.start(_server_with_children(tmp_path), timeout=60)
    assert not cores.run_first(server.process.pid)  # nothing runs before the server
    try:
        assert all(_cores(p.pid) == os.sched_getaffinity(0)
                   for p in [psutil.Process(server.process.pid), *psutil.Process(server.process.pid).children()])
    finally:
        server.stop()
    assert "shares every core" in cores.describe()


def test_a_think_time_is_read_as_its_least_and_its_most_seconds():
    import argparse

    from benchmarks.players import think_range

    assert think_range("1,3") == (1.0, 3.0) and think_range("4.5,6.5") == (4.5, 6.5)
    for wrong in ("3,1", "-1,2"):
        with pytest.raises(argparse.ArgumentTypeError):
            think_range(wrong)
