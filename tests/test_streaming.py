"""The chapter stream against a real server: text arrives while the model is still
writing, in order, and a reconnect resumes exactly where it left off."""
from __future__ import annotations

import html

import httpx
import pytest

from tests.support import player

WORLD, TOPIC = "clockwork-harbor", "plants"


def _second_chapter_stream(client) -> str:
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    return player.choose_htmx(client, page.action, page.choices[0])


def _chunk_text(result: player.SseResult) -> str:
    return "".join(e.data for e in result.events if e.event == "chunk")


def _streamed_request(model) -> dict:
    return [r for r in model.requests if r["stream"]][-1]


def test_when_the_model_writes_slowly_then_chunks_arrive_before_it_has_finished(client, scripted_model):
    scripted_model.script.token_interval = 0.03
    stream_url = _second_chapter_stream(client)
    result = player.read_sse(client, stream_url)

    chunks = [e for e in result.events if e.event == "chunk"]
    model = _streamed_request(scripted_model)
    assert len(chunks) > 20, "the chapter arrived in too few pieces to be streaming"
    assert chunks[0].at < model["last_chunk"], "the first chunk only arrived after the model had finished"
    before_model_done = [c for c in chunks if c.at < model["last_chunk"]]
    assert len(before_model_done) > len(chunks) // 2, "most text arrived only after the model had finished"
    assert [int(e.id) for e in result.events] == sorted(int(e.id) for e in result.events)
    assert result.names[-3:] == ["replace-content", "choices", "close"]


def test_when_chunks_are_joined_then_they_are_the_chapter_in_the_order_written(client, scripted_model):
    result = player.read_sse(client, _second_chapter_stream(client))

    streamed = html.unescape("".join(e.data for e in result.events if e.event == "chunk"))
    final = html.unescape(result.data("replace-content")).replace("<p>", " ").replace("</p>", " ")
    assert " ".join(streamed.split()) == " ".join(final.split())


def test_when_a_reader_reconnects_with_last_event_id_then_nothing_repeats_and_nothing_is_missing(
    client, scripted_model
):
    scripted_model.script.token_interval = 0.01
    stream_url = _second_chapter_stream(client)
    full = player.read_sse(client, stream_url)
    chunk_ids = [int(e.id) for e in full.events if e.event == "chunk"]
    cut = chunk_ids[len(chunk_ids) // 2]

    resumed = player.read_sse(client, stream_url, headers={"Last-Event-ID": str(cut)})

    first_part = "".join(e.data for e in full.events if e.event == "chunk" and int(e.id) <= cut)
    second_part = "".join(e.data for e in resumed.events if e.event == "chunk")
    all_text = "".join(e.data for e in full.events if e.event == "chunk")
    assert first_part + second_part == all_text
    assert all(int(e.id) > cut for e in resumed.events)
    assert resumed.names[-3:] == ["replace-content", "choices", "close"]


def test_when_a_finished_chapter_is_streamed_again_then_it_is_replayed_without_a_new_generation(
    client, scripted_model
):
    stream_url = _second_chapter_stream(client)
    player.read_sse(client, stream_url)
    calls = len([r for r in scripted_model.requests if r["stream"]])

    again = player.read_sse(client, stream_url)

    assert again.names == ["chunk"] * again.names.count("chunk") + ["replace-content", "choices", "close"]
    assert len([r for r in scripted_model.requests if r["stream"]]) == calls, "replaying started a generation"


def test_when_the_same_choice_is_sent_twice_then_one_generation_serves_both(client, scripted_model):
    page = player.read_chapter(client, player.start(client, WORLD, TOPIC))
    before = len([r for r in scripted_model.requests if r["stream"]])
    first = player.choose_htmx(client, page.action, page.choices[0])
    second = player.choose_htmx(client, page.action, page.choices[0])

    assert first == second
    player.read_sse(client, first)
    assert len([r for r in scripted_model.requests if r["stream"]]) == before + 1


@pytest.mark.parametrize("junk", ["²".encode("latin-1"), b"not-a-number", b"-3", b"1e3", b"\xff\xfe", b"7 7",
                                  b"99999999999999999999999999"])
def test_when_last_event_id_is_no_id_of_ours_then_the_stream_starts_over_and_ends_with_close(
    client, scripted_model, junk
):
    """Regression: `Last-Event-ID: ²` (a digit to str.isdigit, not to int) answered 500."""
    stream_url = _second_chapter_stream(client)
    full = player.read_sse(client, stream_url)

    again = player.read_sse(client, stream_url, headers={"Last-Event-ID": junk})

    assert again.status == 200 and again.content_type.startswith("text/event-stream")
    assert again.names[-3:] == ["replace-content", "choices", "close"]
    assert _chunk_text(again) == _chunk_text(full), "the stream did not start over from its beginning"


def test_when_the_model_writes_markup_then_every_event_carries_it_escaped(client, scripted_model):
    scripted_model.script.inject_html = True
    result = player.read_sse(client, _second_chapter_stream(client))
    streamed = "".join(e.data for e in result.events if e.event in ("chunk", "replace-content", "choices"))

    assert "<script" not in streamed.lower() and "<b>" not in streamed
    assert "&lt;script&gt;" in streamed


def test_when_another_browser_asks_for_the_stream_then_it_gets_404(client, server):
    stream_url = _second_chapter_stream(client)
    with httpx.Client(base_url=server.base_url) as stranger:
        assert stranger.get(stream_url).status_code == 404


def test_when_the_reader_leaves_mid_chapter_then_the_chapter_is_still_finished_and_shown_once(
    client, scripted_model, database_url
):
    from tests.support.database import rows, wait_until

    scripted_model.script.token_interval = 0.02
    stream_url = _second_chapter_stream(client)
    with client.stream("GET", stream_url) as response:
        for line in response.iter_lines():
            if line.startswith("id: 3"):
                break  # the tab is closed here

    wait_until(lambda: rows(database_url, "SELECT state FROM chapters WHERE number = 2") == [("complete",)],
               20, "the chapter was not finished after its reader left")
    reopened = player.read_sse(client, stream_url)
    text = "".join(e.data for e in reopened.events if e.event == "chunk")
    sentences = [s for s in html.unescape(text).split(". ") if len(s.split()) > 4]
    assert len(sentences) == len(set(sentences)), "text was shown twice"
    assert reopened.names[-3:] == ["replace-content", "choices", "close"]


def test_when_a_chapter_is_being_written_then_its_stream_is_its_owners_alone(client, server, scripted_model):
    # A chapter being written is streamed from its generation, without reading the store:
    # the owner is checked against the adventure the generation holds.
    scripted_model.script.token_interval = 0.05
    stream_url = _second_chapter_stream(client)
    with httpx.Client(base_url=server.base_url, timeout=30) as stranger:
        stranger.get("/")  # a cookie of its own
        assert stranger.get(stream_url).status_code == 404
    with httpx.Client(base_url=server.base_url, timeout=30) as no_cookie:
        assert no_cookie.get(stream_url).status_code == 404
    result = player.read_sse(client, stream_url)
    assert result.names[-3:] == ["replace-content", "choices", "close"]
    assert _chunk_text(result)
