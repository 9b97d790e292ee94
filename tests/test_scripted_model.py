"""The scripted model server acts like an OpenAI endpoint, seen through litellm over real HTTP.
(litellm's offline switches are set by `service`, which tests/conftest.py imports first.)"""

import asyncio
import json
import re
import time
from itertools import pairwise

import httpx
import litellm
import openai
import pytest

from tests.support.scripted_replies import INJECTED_HTML, build_reply, find_request_tag

pytest_plugins = ["tests.support.fixtures"]


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


async def call(server, messages, stream=True, **kwargs):
    # num_retries=0 so every scripted failure is visible to the test, none is retried away.
    return await litellm.acompletion(model="openai/scripted", api_base=server.url,
                                     api_key="test", messages=messages, stream=stream,
                                     num_retries=0, **kwargs)


async def read_stream(stream, arrivals=None):
    pieces = []
    async for chunk in stream:
        if content := chunk.choices[0].delta.content:
            pieces.append(content)
            if arrivals is not None:
                arrivals.append(time.monotonic())
    return pieces


async def test_stream_honours_ttft_and_token_interval(scripted_model):
    scripted_model.script.reply_override = "one two three four five"
    # Warm-up: litellm's first stream in a process does one-off lazy imports that would
    # hold back the first chunk and squeeze the gaps measured on the client.
    await read_stream(await call(scripted_model, user("CHAPTER TYPE: STORY")))
    scripted_model.script.update(ttft=0.1, token_interval=0.05)
    arrivals: list[float] = []
    started = time.monotonic()
    pieces = await read_stream(await call(scripted_model, user("CHAPTER TYPE: STORY")), arrivals)

    assert pieces == ["one", " two", " three", " four", " five"]
    assert arrivals[0] - started >= 0.1
    assert all(b - a >= 0.035 for a, b in pairwise(arrivals))
    record = scripted_model.requests[-1]
    assert record["stream"] and record["model"] == "scripted" and record["outcome"] == "ok"
    assert record["first_chunk"] - record["received"] >= 0.1
    times = record["chunk_times"]
    assert len(times) == 5 and all(b - a >= 0.045 for a, b in pairwise(times))


async def test_story_chapter_has_mira_paragraphs_and_three_choices(scripted_model):
    text = "".join(await read_stream(await call(scripted_model, user("CHAPTER TYPE: STORY"))))
    story, block = text.split("\n\n<CHOICES>\n")
    assert "Mira" in story and story.count("\n\n") >= 1
    assert re.findall(r"^Choice ([ABC]): \S", block, re.MULTILINE) == ["A", "B", "C"]
    assert block.endswith("</CHOICES>")


async def test_lesson_chapter_ends_with_the_question_verbatim(scripted_model):
    question = "If Mira has 3 lanterns and finds 4 more, how many does she have?"
    prompt = f"CHAPTER TYPE: LESSON\nLESSON QUESTION: {question}\nWrite the chapter."
    text = "".join(await read_stream(await call(scripted_model, user(prompt))))
    assert text.endswith(question)
    assert "CHOICES" not in text.upper()


async def test_fail_times_fails_twice_then_recovers(scripted_model):
    scripted_model.script.update(fail_status=500, fail_times=2)
    for _ in range(2):
        with pytest.raises(litellm.InternalServerError):
            await call(scripted_model, user("CHAPTER TYPE: STORY"))
    assert await read_stream(await call(scripted_model, user("CHAPTER TYPE: STORY")))
    assert [r["outcome"] for r in scripted_model.requests] == ["error 500", "error 500", "ok"]


async def test_drop_after_breaks_the_stream_after_three_chunks(scripted_model):
    scripted_model.script.drop_after = 3
    stream = await call(scripted_model, user("CHAPTER TYPE: STORY"))
    pieces: list[str] = []
    with pytest.raises(openai.APIError):
        async for chunk in stream:
            pieces.append(chunk.choices[0].delta.content)
    assert pieces == ["The", " lantern", " flickered"]
    assert scripted_model.requests[-1]["outcome"] == "dropped"


@pytest.mark.parametrize("knobs, before_silence", [({"stall_after": 2}, 2),
                                                   ({"stall_before_first": True}, 0)])
async def test_stall_makes_the_stream_go_silent(scripted_model, knobs, before_silence):
    scripted_model.script.update(**knobs)
    stream = await call(scripted_model, user("CHAPTER TYPE: STORY"))
    for _ in range(before_silence):
        assert (await anext(stream)).choices[0].delta.content
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(anext(stream), timeout=0.3)
    await stream.aclose()
    assert scripted_model.requests[-1]["outcome"] == "stalled"


async def test_tag_replies_opens_each_stream_with_its_own_request_tag(scripted_model):
    scripted_model.script.update(tag_replies=True, reply_override="one two")
    replies = [await read_stream(await call(scripted_model, user("CHAPTER TYPE: STORY"))) for _ in range(2)]
    tags = [r["tag"] for r in scripted_model.requests]
    assert replies == [[f"[{tag}] one", " two"] for tag in tags]
    assert tags[0] != tags[1] and [find_request_tag(r[0]) for r in replies] == tags


async def test_replies_carry_no_tag_by_default_nor_helper_calls_when_tagging(scripted_model):
    scripted_model.script.reply_override = "one two"
    assert await read_stream(await call(scripted_model, user("CHAPTER TYPE: STORY"))) == ["one", " two"]
    scripted_model.script.tag_replies = True
    response = await call(scripted_model, user("TASK: SUMMARY"), stream=False)
    assert response.choices[0].message.content.startswith("Title: ")
    assert [r["tag"] for r in scripted_model.requests] == [None, None]


async def test_helper_call_honours_helper_latency(scripted_model):
    scripted_model.script.helper_latency = 0.2
    started = time.monotonic()
    response = await call(scripted_model, user("TASK: SUMMARY"), stream=False)
    assert time.monotonic() - started >= 0.2
    assert response.choices[0].message.content.startswith("Title: ")
    record = scripted_model.requests[-1]
    assert not record["stream"] and record["kind"] == "SUMMARY"
    assert record["first_chunk"] - record["received"] >= 0.2


async def test_fault_scope_helper_spares_streamed_chapters(scripted_model):
    scripted_model.script.update(fail_status=503, fault_scope="helper", inject_html=True)
    text = "".join(await read_stream(await call(scripted_model, user("CHAPTER TYPE: STORY"))))
    assert INJECTED_HTML not in text
    with pytest.raises(litellm.ServiceUnavailableError):
        await call(scripted_model, user("TASK: SUMMARY"), stream=False)


def test_control_endpoints_update_script_and_report_requests(scripted_model):
    base = scripted_model.url.removesuffix("/v1")
    with httpx.Client(base_url=base) as client:
        assert client.post("/_script", json={"ttft": 0.25}).json()["ttft"] == 0.25
        assert scripted_model.script.ttft == 0.25
        assert client.post("/_script", json={"nope": 1}).status_code == 400
        client.post("/v1/chat/completions", json={"model": "m", "messages": user("TASK: CHOICES")})
        assert client.get("/_requests").json()[0]["kind"] == "CHOICES"
        assert client.post("/_reset").json()["ttft"] == 0.0


def test_reply_shapes_follow_the_prompt_markers():
    _, malformed = build_reply(user("CHAPTER TYPE: STORY"), choices_style="malformed")
    assert "<CHOICES>" not in malformed and malformed.count("\n1. ") == 2
    _, missing = build_reply(user("CHAPTER TYPE: REFLECT"), choices_style="missing")
    assert "CHOICES" not in missing.upper()
    _, conclusion = build_reply(user("CHAPTER TYPE: CONCLUSION"))
    assert "CHOICES" not in conclusion.upper()
    _, characters = build_reply(user("TASK: CHARACTERS"))
    names = [c["name"] for c in json.loads(characters.split("```json\n")[1].split("```")[0])]
    assert names == ["Mira"]
    assert build_reply(user("CHAPTER TYPE: STORY")) == build_reply(user("CHAPTER TYPE: STORY"))


async def draw(server, prompt="a lantern on a bridge"):
    return await litellm.aimage_generation(model="openai/scripted-images", api_base=server.url, api_key="test",
                                           prompt=prompt, num_retries=0, max_retries=0)


async def test_images_endpoint_answers_a_real_png_after_image_latency_and_logs_the_prompt(scripted_model):
    import base64
    import io

    from PIL import Image

    scripted_model.script.image_latency = 0.3
    started = time.monotonic()
    reply = await draw(scripted_model, "Mira on the bridge")
    assert time.monotonic() - started >= 0.3
    with Image.open(io.BytesIO(base64.b64decode(reply.data[0].b64_json))) as picture:
        picture.load()
        assert picture.format == "PNG" and picture.size == (48, 32)
        assert picture.text["prompt"] == "Mira on the bridge"
        serial = int(picture.text["serial"])
    [record] = scripted_model.requests
    assert (record["kind"], record["prompt"], record["serial"], record["outcome"]) == (
        "IMAGE", "Mira on the bridge", serial, "ok")


async def test_fault_scope_image_fails_pictures_and_spares_chat_calls(scripted_model):
    scripted_model.script.update(fail_status=500, fault_scope="image", fail_times=1)
    assert await read_stream(await call(scripted_model, user("CHAPTER TYPE: STORY")))
    with pytest.raises(litellm.InternalServerError):
        await draw(scripted_model)
    assert (await draw(scripted_model)).data[0].b64_json  # fail_times used up


async def test_picture_task_answers_a_scene_from_the_chapter_it_quotes(scripted_model):
    prompt = ("TASK: PICTURE\nCHAPTER 4:\n[r9] Mira found the key under a glowing cap. She laughed.\n\n"
              "Pick the one moment")
    reply = await call(scripted_model, user(prompt), stream=False)
    assert reply.choices[0].message.content == "Scene: [r9] Mira found the key under a glowing cap."
