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

import regex


@dataclass(frozen=True)
class ReplyShape:
    name: str
    # For providers with structured outputs: types only, which every one of them accepts
    # (None: the plain-text form is asked of them).
    schema: dict | None
    # For the embedded model: a GBNF grammar, or a stricter schema that becomes one.
    grammar: str | None = None
    local_schema: dict | None = None
    # A repetition penalty works against a format whose separators repeat by design: penalised
    # for its second comma, a small model runs a choice on to its last allowed word.
    penalize_repeats: bool = True

    def response_format(self, local: bool = False) -> dict | None:
        schema = (self.local_schema or self.schema) if local else self.schema
        if schema is None:
            return None
        return {"type": "json_schema", "json_schema": {"name": self.name, "schema": schema}}


def _alternatives(words: tuple[str, ...]) -> str:
    return " | ".join(json.dumps(word) for word in words)


# The embedded model writes its three choices on from its own chapter, as the story's next
# sentence: "You could follow the owl to the tent, ask the camel driver about the map, or
# look inside the old chest." Told in the story's words they are about what just happened;
# as a list or a block, a small model takes them for a task and writes about the book.
CHOICES_LEAD = "You think about what to do next. You could"
# Each starts with a verb of one of three kinds of action (going somewhere, talking to
# someone, looking into something): three different, complete things to do, never a quiz
# answer or a name standing alone.
GO = ("follow", "climb", "cross", "run", "walk", "jump", "swim", "sail", "ride", "fly", "hurry", "sneak",
      "go", "enter", "leave", "chase", "hide", "return", "carry", "head", "step", "race")
# No "answer": the model went on with "the question", a quiz in place of a thing to do.
TALK = ("ask", "tell", "call", "greet", "thank", "help", "share", "invite", "warn", "promise", "sing", "wave",
        "whisper", "offer", "give", "show", "teach", "comfort", "cheer")
# No "touch": the model wrote "Touch things to do", "Touch in the planet of ...".
LOOK = ("look", "search", "listen", "open", "read", "check", "explore", "find", "watch", "peek", "study",
        "pick", "dig", "light", "count", "try", "test", "collect")
# Words of each choice: short actions read well on a button, and a small model that runs on
# loses the thread. A word is a plain word: a capital only at its start, at most ten letters.
CHOICE_WORDS = (3, 9)
_CHOICES_GBNF = f"""root ::= " " go rest ", " talk rest ", or " look rest "."
rest ::= (" " word){{{CHOICE_WORDS[0] - 1},{CHOICE_WORDS[1] - 1}}}
word ::= [a-zA-Z] [a-z'-]{{0,9}}
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
    penalize_repeats=False,
)

# The embedded model's summaries are held to summary_in_own_words instead.
SUMMARY = ReplyShape(
    "summary",
    {"type": "object", "properties": {"title": {"type": "string"}, "summary": {"type": "string"}},
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


# The embedded model's summary, in the chapter's own words: every word of its title and
# summary is one the chapter used (in its letter case, or capitalised), or one of a few
# small words. Asked for a summary, a 135M model otherwise writes about anything at all (a
# dessert, a city, a book "in two to four sentences"), in other languages, or runs words
# together. Its title begins "The": left to choose its first word, it began nearly every
# title with an "S", bound for a "Summary" or "Story" the chapter did not hold ("Something
# to Should").
_OWN_WORDS = 500
_SMALL_WORDS = ("a", "an", "the", "and", "but", "or", "so", "to", "of", "in", "on", "at", "by", "for", "with",
                "is", "are", "was", "were", "has", "had", "you", "your", "he", "she", "it", "they", "his", "her",
                "their", "them", "him", "then", "when", "there", "this", "that", "who", "what", "all", "not")
_ENDINGS = ("'s", "'re", "'ll", "'t", "'ve", "'m", "'d")


def summary_in_own_words(chapter_text: str) -> ReplyShape:
    # Words in capitals are left out: a chapter's shouting is no title.
    told = {word for word in regex.findall(r"[A-Za-z]+", chapter_text)
            if 3 <= len(word) <= 16 and not word.isupper() and word.casefold() not in _SMALL_WORDS}
    told = sorted(told, key=lambda word: (-len(word), word))[:_OWN_WORDS]
    capitalised = [[word, word[:1].upper() + word[1:]] for word in (*told, *_SMALL_WORDS)]
    own, small = ({form for forms in capitalised[:len(told)] for form in forms},
                  {form for forms in capitalised[len(told):] for form in forms})
    grammar = f"""root ::= "{{\\"title\\": \\"" title "\\", \\"summary\\": \\"" summary "\\"}}"
title ::= "The " word (" " word){{0,5}}
summary ::= sentence (" " sentence){{1,3}}
sentence ::= word (","? " " word){{4,24}} [.!]
word ::= own ending? | small
ending ::= {_alternatives(_ENDINGS)}
own ::= {_trie(own) if own else '"story"'}
small ::= {_trie(small)}
"""
    return ReplyShape("summary", SUMMARY.schema, grammar=grammar)


def _trie(words: set[str]) -> str:
    """The words as a GBNF alternation with their common beginnings shared ("c" "a" ("t" |
    "r")): llama.cpp then follows a few branches per letter instead of every word at once."""
    branches: dict[str, set[str]] = {}
    for word in words:
        branches.setdefault(word[0], set()).add(word[1:])
    parts = []
    for letter, rests in sorted(branches.items()):
        ends_here = "" in rests
        rests.discard("")
        if not rests:
            parts.append(json.dumps(letter))
        else:
            parts.append(f"{json.dumps(letter)} ({_trie(rests)}){'?' if ends_here else ''}")
    return " | ".join(parts)
