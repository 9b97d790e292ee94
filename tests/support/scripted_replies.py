"""Deterministic reply texts for the scripted model server (tests.support.scripted_model).

Reads the product's prompt markers (CHAPTER TYPE / LESSON QUESTION / TASK) and returns text
shaped like a real model's answer, so parsers and the UI see realistic input without a model;
and draws the small PNGs of the scripted images endpoint.
"""

from __future__ import annotations

import re
import struct
import zlib

INJECTED_HTML = '<script>alert(1)</script><b>bold</b> & "quotes"'

_TASK = re.compile(r"^\s*TASK:\s*(\w+)", re.MULTILINE)
_CHAPTER = re.compile(r"^\s*CHAPTER TYPE:\s*(\w+)", re.MULTILINE)
_QUESTION = re.compile(r"^\s*LESSON QUESTION:[ \t]*(.+?)[ \t]*$", re.MULTILINE)

# Three story variants so consecutive chapters differ; the prompt's hash picks one, which keeps
# the same prompt -> same reply (tests can compare runs byte for byte).
_STORIES = [
    [
        "The lantern flickered as Mira stepped onto the old rope bridge. Below, the river "
        "muttered over black stones, and the far bank was lost in a silver mist that smelled "
        "of pine and rain.",
        "Halfway across, a plank groaned under her boots. Mira froze, listening. Somewhere in "
        "the fog a bell rang three times, slow and deliberate, as if someone were counting "
        "the travellers who dared to cross at night.",
        "She tightened her grip on the lantern and looked back at you. \"Whatever rings that "
        "bell knows we are here,\" she whispered. \"We can go forward, go back, or wait and "
        "see who comes to meet us.\"",
        "The bell rang again, closer this time. Mira counted under her breath and glanced at "
        "the ropes, the mist and the lantern's shrinking flame. Whatever you chose, she would "
        "follow, but she wanted to hear your plan before the light ran out.",
    ],
    [
        "Morning light spilled through the cracked dome of the observatory. Mira brushed dust "
        "from a brass telescope and found a folded star chart tucked beneath its eyepiece, the "
        "ink still fresh.",
        "The chart marked a path through the northern hills with tiny drawings of owls. At the "
        "bottom, someone had written a single line: the owls remember what the maps forget. "
        "Mira read it twice, frowning.",
        "A draft swept through the room and the telescope swung slowly toward the window. "
        "\"It wants us to look,\" Mira said, half laughing, half afraid. Outside, the hills "
        "waited, green and silent, under a pale sky.",
        "Mira rolled the chart and tucked it into her satchel. \"Someone went to a lot of "
        "trouble to leave this for us,\" she said. \"Either they need help, or they are "
        "testing us.\" She looked at you, waiting to see which way you would lean.",
    ],
    [
        "The market square was loud with gulls and bargaining voices when Mira spotted the "
        "merchant with the painted cart. He sold clocks that ran backwards, and every one of "
        "them had stopped at seven minutes past nine.",
        "\"Curious, aren't they?\" the merchant said, smiling too widely. Mira picked up the "
        "smallest clock. It was warm, like something alive, and she felt it tick once against "
        "her palm before falling still again.",
        "Across the square, a door you had never noticed before stood open. Mira set the clock "
        "down carefully and nudged your arm. \"Seven past nine,\" she murmured. \"That is only "
        "a few minutes from now.\"",
        "The gulls went quiet all at once. The merchant was still smiling, but his eyes kept "
        "drifting toward the open door, and Mira noticed his hands were trembling. Time, it "
        "seemed, was running short for everyone in the square today.",
    ],
]
_CHOICES = [
    ("Cross the bridge quickly before the bell rings again",
     "Return to the bank and look for another way",
     "Wait in the mist to see who rings the bell"),
    ("Follow the owl path into the northern hills",
     "Search the observatory for whoever left the chart",
     "Look through the telescope before deciding"),
    ("Walk through the mysterious open door",
     "Ask the merchant why the clocks stopped",
     "Buy the warm little clock and keep it close"),
]
_REFLECT = [
    "The campfire had burned down to orange coals. Mira sat with her knees drawn up, turning a "
    "smooth pebble over and over in her fingers while the night insects sang around you both.",
    "\"Today I was scared,\" she admitted, \"and I still kept going. I think that is what "
    "courage really is, not feeling brave but choosing the next step anyway.\" She tossed the "
    "pebble into the dark and listened for it to land.",
    "You thought about the bridge, the bell, and everything you had learned along the way. "
    "Mira smiled at you across the embers, waiting to hear what you would carry with you into "
    "tomorrow.",
    "Above you the stars came out one by one. Mira pointed at the brightest of them and "
    "said it reminded her of the lantern on the bridge, small but steady. Then she asked you "
    "which part of the journey had surprised you most.",
]
_CONCLUSION = [
    "At last the path opened onto the hilltop, and the whole valley lay below you in the gold "
    "of late afternoon. Mira laughed, a bright surprised sound, and spread her arms wide as the "
    "wind tugged at her cloak.",
    "Every puzzle you had solved, every question you had answered, seemed to glow in the "
    "village lights that flickered on one by one. The bell that had once frightened you both "
    "now rang softly, like a friend saying goodbye.",
    "\"We did it,\" Mira said, and squeezed your hand. \"Whatever comes next, we know how to "
    "find our way.\" Together you started down the hill toward home, and the adventure came "
    "to a gentle close.",
]
# A model gives each chapter a title of its own (a title another chapter has is asked for
# again): the title names the chapter the summary is asked for.
_SUMMARY_TITLES = ("the Bell in the Mist", "the Rope Bridge", "the Star Chart", "the Stopped Clocks",
                   "the Northern Hills", "the Ruined Observatory", "the Lantern's Glow", "the Strange Merchant",
                   "the Village Lights", "the Way Home")
_SUMMARY_CHAPTER = re.compile(r"^CHAPTER (\d+):", re.MULTILINE)
_SUMMARY = (
    "Title: Mira and {title}\n"
    "Summary: Mira and the reader crossed an old rope bridge at night while a mysterious bell "
    "rang in the fog. They found a star chart in a ruined observatory that pointed toward the "
    "northern hills, and they met a strange merchant whose clocks had all stopped at the same "
    "minute. Along the way Mira admitted she had been afraid but kept going, and the reader "
    "answered questions that helped them choose wisely. By evening they had reached the "
    "hilltop above the village together."
)
_CHARACTERS = (
    "```json\n"
    '[{"name": "Mira", "description": "A curious, brave young traveller who carries a '
    'lantern and guides the reader through the story."}]\n'
    "```"
)


def _last(pattern: re.Pattern[str], text: str) -> str | None:
    # Last match wins: prompts may quote earlier chapters, the newest instruction is at the end.
    found = pattern.findall(text)
    return found[-1].strip() if found else None


def message_text(messages: list[dict]) -> str:
    parts: list[str] = []
    for message in messages:
        content = message.get("content") or ""
        if isinstance(content, list):  # OpenAI "content parts" form
            content = "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
        parts.append(str(content))
    return "\n".join(parts)


def choices_block(options: tuple[str, str, str], style: str) -> str:
    if style == "missing":
        return ""
    if style == "malformed":
        return f"\n\n<choices>\n1. {options[0]}\n1. {options[1]}\n</choices>"
    lines = "\n".join(f"Choice {letter}: {text}" for letter, text in zip("ABC", options, strict=False))
    return f"\n\n<CHOICES>\n{lines}\n</CHOICES>"


def story_replies() -> list[str]:
    """Each STORY chapter the scripted model writes, its choices block included."""
    return ["\n\n".join(story) + choices_block(options, "good")
            for story, options in zip(_STORIES, _CHOICES, strict=True)]


def build_reply(messages: list[dict], choices_style: str = "good",
                inject_html: bool = False, story_variants: int = 1) -> tuple[str, str]:
    """Return (kind, text) for a request; kind is the TASK or CHAPTER TYPE that was detected.
    `story_variants`: a STORY chapter tells that many of the stories one after the other."""
    text = message_text(messages)
    variant = zlib.crc32(text.encode()) % len(_STORIES)
    paragraphs = [p for k in range(max(1, story_variants)) for p in _STORIES[(variant + k) % len(_STORIES)]]
    options = _CHOICES[variant]
    if inject_html:
        paragraphs[0] = f"{paragraphs[0]} Mira found a note that read: {INJECTED_HTML}"
        options = (f"{options[0]} {INJECTED_HTML}", *options[1:])

    task = (_last(_TASK, text) or "").upper()
    chapter = (_last(_CHAPTER, text) or "").upper()
    if task == "SUMMARY":
        number = int(_last(_SUMMARY_CHAPTER, text) or 1)
        title = _SUMMARY_TITLES[(number - 1) % len(_SUMMARY_TITLES)]
        return "SUMMARY", _SUMMARY.format(title=title) + (f" {INJECTED_HTML}" if inject_html else "")
    # The repair call is asked for the block alone; make it fail with fault_scope="helper".
    if task == "CHOICES":
        return "CHOICES", choices_block(options, "good").lstrip("\n")
    if task == "CHARACTERS":
        return "CHARACTERS", _CHARACTERS
    if task == "PICTURE":
        return "PICTURE", f"Scene: {picturable_moment(text)}"
    if chapter in ("STORY", "REFLECT"):
        body = _REFLECT if chapter == "REFLECT" else paragraphs
        if chapter == "REFLECT" and inject_html:
            body = [*body[:-1], f"{body[-1]} {INJECTED_HTML}"]
        return chapter, "\n\n".join(body) + choices_block(options, choices_style)
    if chapter == "LESSON":
        question = _last(_QUESTION, text) or "What do you think happens next?"
        # The question must be the very last text, verbatim, so the product can match it.
        story = "\n\n".join(paragraphs[:3] + [f"Mira tapped the old map and asked: {question}"])
        # A model that ignores "no choices" appends a junk block after the question.
        junk = choices_block(options, "malformed") if choices_style == "malformed" else ""
        return "LESSON", story + junk
    if chapter == "CONCLUSION":
        return "CONCLUSION", "\n\n".join(_CONCLUSION)
    return "GENERIC", paragraphs[0] + choices_block(options, choices_style)


_PICTURE_CHAPTER = re.compile(r"^CHAPTER \d+:\n(.*?)(?:\n\n(?:Pick the one moment)|\Z)", re.MULTILINE | re.DOTALL)
_FIRST_SENTENCE = re.compile(r".+?[.!?](?=\s|$)", re.DOTALL)
_DEFAULT_MOMENT = "Mira holds up her lantern at the edge of an old rope bridge in the silver mist."


def picturable_moment(text: str) -> str:
    """The first sentence of the chapter the PICTURE request quotes (its story, not the
    lesson feedback): a tagged chapter's moment carries its tag, so a test can tell which
    chapter a picture was drawn from."""
    found = _PICTURE_CHAPTER.search(text)
    paragraphs = [p for p in (found.group(1) if found else "").split("\n\n")
                  if p.strip() and not p.startswith("Lesson check")]
    sentence = _FIRST_SENTENCE.match(" ".join(paragraphs[0].split())) if paragraphs else None
    return sentence.group() if sentence else _DEFAULT_MOMENT


def scripted_png(serial: int, prompt: str, width: int = 48, height: int = 32, padding: int = 0) -> bytes:
    """A small real PNG (3:2), coloured by its prompt, that says in its text chunks which
    request drew it and from what prompt (read them with Pillow's `Image.text`); `padding`:
    bytes of an extra chunk that readers skip, for a picture as large as a real one."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    colour = zlib.crc32(prompt.encode()).to_bytes(4, "big")[:3]
    rows = b"".join(b"\x00" + colour * width for _ in range(height))
    text = [chunk(b"iTXt", key + b"\x00\x00\x00\x00\x00" + value.encode())
            for key, value in ((b"serial", str(serial)), (b"prompt", prompt))]
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + b"".join(text) + (chunk(b"paDd", bytes(padding)) if padding else b"")
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def split_chunks(text: str, tokens_per_chunk: int = 1, chunk_chars: int | None = None) -> list[str]:
    """Word-ish tokens (each word with its leading whitespace), or fixed-size pieces."""
    if chunk_chars:
        return [text[i:i + chunk_chars] for i in range(0, len(text), chunk_chars)]
    tokens = re.findall(r"\s*\S+", text) or [text]
    n = max(1, tokens_per_chunk)
    return ["".join(tokens[i:i + n]) for i in range(0, len(tokens), n)]


# "[r17] ": letters, digits and brackets only, so the server's text filters pass it through
# and HTML-escaping leaves it as it is; no filter starts a heading or a choices block at "[r".
_REQUEST_TAG = re.compile(r"\[(r\d+)\]")


def request_tag(serial: int) -> str:
    return f"r{serial}"


def tag_first_chunk(chunks: list[str], tag: str) -> list[str]:
    """The same chunks with the first one opened by "[tag] " (the chunk count is unchanged)."""
    return [f"[{tag}] {chunks[0]}", *chunks[1:]] if chunks else [f"[{tag}] "]


def find_request_tag(text: str) -> str | None:
    """The tag a tagged reply opens with ("r17"), found in text as the reader received it."""
    found = _REQUEST_TAG.search(text)
    return found.group(1) if found else None


def usage(messages: list[dict], text: str) -> dict:
    # Word counts stand in for tokens: only the shape of "usage" matters to callers.
    prompt, completion = len(message_text(messages).split()), len(text.split())
    return {"prompt_tokens": prompt, "completion_tokens": completion,
            "total_tokens": prompt + completion}
