"""The shapes of the replies that have one: a chapter's three choices, a summary, the
characters, a picture's scene. Each is a JSON schema that litellm passes on as the
provider's structured output (`response_format`), and for the embedded model a llama.cpp
grammar that makes its reply well-formed every time: the JSON schema with patterns that
keep a small model to short, plain words, or a plain-text grammar where that reads better.
The parsers (domain/choices.py, domain/summaries.py) read the JSON and the plain forms alike.
"""
from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class ReplyShape:
    name: str
    # For providers with structured outputs: types only, which every one of them accepts
    # (None: the plain-text form is asked of them).
    schema: dict | None
    # For the embedded model: a GBNF grammar, or a stricter schema that becomes one.
    grammar: str | None = None
    local_schema: dict | None = None

    def response_format(self, local: bool = False) -> dict | None:
        schema = (self.local_schema or self.schema) if local else self.schema
        if schema is None:
            return None
        return {"type": "json_schema", "json_schema": {"name": self.name, "schema": schema}}


def _alternatives(words: tuple[str, ...]) -> str:
    return " | ".join(json.dumps(word) for word in words)


# The three choices start with a verb from three kinds of action (going somewhere, talking to
# someone, looking into something), so they are three different, complete things to do and
# never a quiz answer or a name standing alone.
GO = ("Follow", "Climb", "Cross", "Run", "Walk", "Jump", "Swim", "Sail", "Ride", "Fly", "Hurry", "Sneak",
      "Go", "Enter", "Leave", "Chase", "Hide", "Return", "Carry", "Head", "Step", "Race")
TALK = ("Ask", "Tell", "Call", "Greet", "Thank", "Help", "Share", "Invite", "Warn", "Promise", "Sing", "Wave",
        "Whisper", "Answer", "Offer", "Give", "Show", "Teach", "Comfort", "Cheer")
LOOK = ("Look", "Search", "Listen", "Open", "Read", "Check", "Explore", "Find", "Watch", "Peek", "Study",
        "Touch", "Pick", "Dig", "Light", "Count", "Try", "Test", "Collect")
# What the assistant's reply is continued from when the embedded model writes the choices
# after its chapter: the block's opening, with the question it answers.
CHOICES_OPENING = "<CHOICES>\nWhat will you do next?\nChoice A:"
# Words of each choice: short actions read well on a button, and a small model that runs on
# loses the thread. A word is a plain word: a capital only at its start, at most 12 letters.
CHOICE_WORDS = (3, 9)
_CHOICES_GBNF = f"""root ::= " " go rest "\\nChoice B: " talk rest "\\nChoice C: " look rest "\\n</CHOICES>"
rest ::= (" " word){{{CHOICE_WORDS[0] - 1},{CHOICE_WORDS[1] - 1}}} "."
word ::= [a-zA-Z] [a-z'-]{{0,11}} ","?
go ::= {_alternatives(GO)}
talk ::= {_alternatives(TALK)}
look ::= {_alternatives(LOOK)}
"""
CHOICES = ReplyShape(
    "choices",
    {"type": "object", "properties": {"choices": {"type": "array", "items": {"type": "string"},
                                                  "minItems": 3, "maxItems": 3}},
     "required": ["choices"]},
    grammar=_CHOICES_GBNF,
)

_TITLE_PATTERN = "^[A-Z][a-z'-]*( [A-Za-z][a-z'-]*){1,6}$"
_SENTENCES_PATTERN = "^[A-Z][^\"\\\\{}\\n]{30,320}[.!]$"
SUMMARY = ReplyShape(
    "summary",
    {"type": "object", "properties": {"title": {"type": "string"}, "summary": {"type": "string"}},
     "required": ["title", "summary"]},
    local_schema={"type": "object", "properties": {"title": {"type": "string", "pattern": _TITLE_PATTERN},
                                                   "summary": {"type": "string", "pattern": _SENTENCES_PATTERN}},
                  "required": ["title", "summary"]},
)

_CHARACTER = {"type": "object", "properties": {"name": {"type": "string"}, "description": {"type": "string"}},
              "required": ["name", "description"]}
_LOCAL_CHARACTER = {"type": "object", "properties": {
    "name": {"type": "string", "pattern": "^[A-Z][a-z'-]+( [A-Z][a-z'-]+){0,2}$"},
    "description": {"type": "string", "pattern": "^[a-zA-Z][^\"\\\\{}\\n]{10,160}$"}},
    "required": ["name", "description"]}
CHARACTERS = ReplyShape(
    "characters",
    {"type": "object", "properties": {"characters": {"type": "array", "items": _CHARACTER}},
     "required": ["characters"]},
    local_schema={"type": "object", "properties": {"characters": {"type": "array", "items": _LOCAL_CHARACTER,
                                                                  "maxItems": 4}},
                  "required": ["characters"]},
)

# Hosted models write the plain "Scene: ..." line as asked; the embedded one is held to it.
SCENE = ReplyShape(
    "scene", None,
    grammar='root ::= "Scene: " [A-Z] [^\\n]{20,220} [.!]\n',
)
