"""The llama.cpp side of the embedded model: one loaded GGUF, its chat template, the saved
states of recent prompts, and one generation at a time with what a small model needs: a
grammar (GBNF, or a JSON schema turned into one), an end held off until a minimum length,
and a reply that continues the last assistant message. Called from one worker thread only.
"""
from __future__ import annotations

import ctypes
import json
import logging
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
SAMPLING_PARAMS = ("max_tokens", "temperature", "top_p", "top_k", "min_p", "stop", "repeat_penalty",
                   "presence_penalty", "frequency_penalty", "seed")
# States of recent foreground prompts kept for their prefixes: a chapter's prompt begins as the
# last one did, and reading it again is most of a small model's time to first text on a CPU.
# Only the attention cache is kept (about 22 KB a token for SmolLM2-135M), not the logits.
SAVED_STATES = 4
# Grammars kept parsed: the fixed ones, and the few most recent made for one chapter.
GRAMMARS = 8
_SENTENCE_END = re.compile(r"[.!?][\"”’']?$")


@dataclass(frozen=True)
class Dry:
    """llama.cpp's DRY sampler ("don't repeat yourself"): a token that would make a run of
    words already written longer than `allowed_length` tokens is penalised by `multiplier`
    times `base` to the power of the excess, over the last `last_n` tokens. Unlike a
    repetition penalty it leaves single common words alone and stops loops of phrases."""

    multiplier: float
    base: float = 1.75
    allowed_length: int = 2
    last_n: int = 512
    # A run does not carry on past these: a new line, a name's colon or a quotation begins afresh.
    breakers: tuple[str, ...] = ("\n", ":", "\"", "*")


@dataclass
class Request:
    """One generation: the chat messages and what shapes the reply."""

    messages: list[dict]
    sampling: dict = field(default_factory=dict)
    grammar: str | None = None
    dry: Dry | None = None
    # Held off: the end of the reply, until this many tokens are written.
    min_tokens: int = 0
    # Past this many tokens the reply ends at its next sentence end, before a length cap cuts
    # it in the middle of one (0: only the cap ends it).
    end_after: int = 0
    # The last message is the assistant's, and the reply goes on from its last word.
    continue_final_message: bool = False


class Aborted(Exception):
    """The request was called off while the model was reading its prompt."""


def grammar_text(grammar: str | None, response_format: dict | None) -> str | None:
    """A GBNF grammar from an explicit one, or from an OpenAI-style `response_format`."""
    if grammar:
        return grammar
    if not response_format:
        return None
    from llama_cpp import llama_grammar

    kind = response_format.get("type")
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema") or {}
        return llama_grammar.json_schema_to_gbnf(json.dumps(schema))
    if kind == "json_object":
        schema = response_format.get("schema")
        return llama_grammar.json_schema_to_gbnf(json.dumps(schema)) if schema else llama_grammar.JSON_GBNF
    return None


class LocalEngine:
    def __init__(self, model_path: Path, n_ctx: int, n_threads: int) -> None:
        import llama_cpp  # deferred: the server must start without the [local] extra
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llama_cpp = llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)
        template = self.llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise RuntimeError(f"{model_path} has no chat template")
        model = self.llm._model
        self._formatter = Jinja2ChatFormatter(template, model.token_get_text(self.llm.token_eos()),
                                              model.token_get_text(self.llm.token_bos()))
        vocab = model.vocab
        self._ends = [t for t in range(self.llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]
        self._states: OrderedDict[tuple[int, ...], bytes] = OrderedDict()
        self._grammars: OrderedDict[str, Any] = OrderedDict()
        # llama.cpp asks this between steps of a prompt's evaluation: a request called off
        # while its (long) prompt is read stops within milliseconds, not after it.
        self._stop: threading.Event | None = None
        self._abort = llama_cpp.ggml_abort_callback(lambda _data: bool(self._stop and self._stop.is_set()))
        llama_cpp.llama_set_abort_callback(self.llm._ctx.ctx, self._abort, None)
        # llama-cpp-python builds its sampler chain itself and has no DRY option: the chain it
        # builds gets llama.cpp's DRY sampler inserted after the penalties.
        self._dry: Dry | None = None
        self._sentence_ends: dict[int, bool] = {}
        self._build_sampler = self.llm._init_sampler
        self.llm._init_sampler = self._sampler_chain

    def close(self) -> None:
        self.llm.close()

    def prompt_tokens(self, request: Request) -> list[int]:
        messages = request.messages
        if request.continue_final_message and messages and messages[-1].get("role") == "assistant":
            text = self._formatter(messages=messages[:-1]).prompt + (messages[-1].get("content") or "")
        else:
            text = self._formatter(messages=messages).prompt
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def generate(self, request: Request, stop: threading.Event, foreground: bool) -> Iterator[str]:
        """The reply's text, token by token; raises Aborted when `stop` is set while the
        prompt is read, and simply ends when it is set between tokens."""
        prompt = self.prompt_tokens(request)
        self._stop = stop
        started = time.monotonic()
        try:
            reused = self._restore_best(prompt)
            first, count = None, 0
            for text in self._phases(prompt, request, stop):
                first = first or time.monotonic()
                count += 1
                yield text
            log.info("local model: %d prompt tokens (%d already read), first token after %.2f s, %d tokens in %.2f s",
                     len(prompt), reused, (first or time.monotonic()) - started, count,
                     time.monotonic() - (first or started))
        except RuntimeError as exc:
            if not stop.is_set():
                raise
            # llama.cpp takes an aborted batch back out; what was read before it stays usable
            # (the next request, often the same chapter's choices, begins the same way).
            self.llm._ctx.kv_cache_seq_rm(-1, self.llm.n_tokens, -1)
            raise Aborted() from exc
        finally:
            self._stop = None
        if foreground and not stop.is_set():
            self._save_state()

    def _phases(self, prompt: list[int], request: Request, stop: threading.Event) -> Iterator[str]:
        sampling = {k: v for k, v in request.sampling.items() if k in SAMPLING_PARAMS and v is not None}
        grammar = self._grammar(request.grammar)
        shaping = [*([self._hold_end(len(prompt), request.min_tokens)] if request.min_tokens else []),
                   *([self._end_at_sentence(len(prompt), request.end_after)] if request.end_after else [])]
        processors = self._llama_cpp.LogitsProcessorList(shaping) if shaping else None
        self._dry = request.dry
        stream = self.llm.create_completion(prompt, stream=True, grammar=grammar, logits_processor=processors,
                                            **sampling)
        try:
            for chunk in stream:
                if stop.is_set():  # checked per token, so an abandoned reply frees the CPU
                    return
                if text := chunk["choices"][0]["text"]:
                    yield text
        finally:
            stream.close()

    def _hold_end(self, prompt_length: int, min_tokens: int) -> Callable:
        ends = self._ends

        def hold(ids, logits):
            if len(ids) - prompt_length < min_tokens:
                logits[ends] = -float("inf")
            return logits

        return hold

    def _end_at_sentence(self, prompt_length: int, end_after: int) -> Callable:
        ends, finished = self._ends, self._finishes_sentence

        def end(ids, logits):
            if len(ids) - prompt_length >= end_after and finished(int(ids[-1])):
                kept = logits[ends].copy()
                logits[:] = -float("inf")
                logits[ends] = kept
            return logits

        return end

    def _finishes_sentence(self, token: int) -> bool:
        """Whether a token's text ends a sentence: ".", "!" or "?", maybe with a closing quote."""
        if token not in self._sentence_ends:
            text = self.llm.detokenize([token]).decode("utf-8", errors="ignore").rstrip()
            self._sentence_ends[token] = bool(_SENTENCE_END.search(text))
        return self._sentence_ends[token]

    def _sampler_chain(self, **options: Any) -> Any:
        sampler = self._build_sampler(**options)
        if self._dry is None or not self._dry.multiplier:
            return sampler
        llama_cpp, chain, dry = self._llama_cpp, sampler.sampler, self._dry
        # The chain: a logits processor's sampler (if any), the penalties, then the rest. (A
        # processor's sampler has no name to ask: llama.cpp would call a null function.)
        after = 2 if options.get("logits_processor") is not None else 1
        if not llama_cpp.llama_sampler_name(llama_cpp.llama_sampler_chain_get(chain, after - 1)).endswith(b"penalties"):
            raise RuntimeError("llama-cpp-python's sampler chain is not as expected: no place for DRY")
        rest = [llama_cpp.llama_sampler_chain_remove(chain, after)
                for _ in range(llama_cpp.llama_sampler_chain_n(chain) - after)]
        sampler.add_dry(self.llm._model, dry.multiplier, dry.base, dry.allowed_length, dry.last_n, list(dry.breakers))
        for part in rest:
            llama_cpp.llama_sampler_chain_add(chain, part)
        return sampler

    def _grammar(self, text: str | None) -> Any:
        if not text:
            return None
        if text not in self._grammars:
            self._grammars[text] = self._llama_cpp.LlamaGrammar.from_string(text, verbose=False)
            while len(self._grammars) > GRAMMARS:  # a summary's grammar is its chapter's own
                self._grammars.popitem(last=False)
        self._grammars.move_to_end(text)
        return self._grammars[text]

    # Saved states: the attention cache of one sequence, restored when a new prompt shares
    # more of its beginning with a saved one than with what the context holds now.

    def _save_state(self) -> None:
        llama_cpp, ctx = self._llama_cpp, self.llm._ctx.ctx
        size = llama_cpp.llama_state_seq_get_size(ctx, 0)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0)
        key = tuple(self.llm.input_ids[: self.llm.n_tokens].tolist())
        self._states.pop(key, None)
        self._states[key] = bytes(buffer[:written])
        while len(self._states) > SAVED_STATES:
            self._states.popitem(last=False)

    def _restore_best(self, prompt: list[int]) -> int:
        """Prompt tokens the context holds already, after restoring the best saved state."""
        live = _common_prefix(self.llm.input_ids[: self.llm.n_tokens].tolist(), prompt)
        best, best_length = None, live
        for key in self._states:
            length = _common_prefix(key, prompt)
            if length > best_length:
                best, best_length = key, length
        if best is None:
            return live
        self._states.move_to_end(best)
        state = self._states[best]
        self.llm._ctx.kv_cache_clear()
        data = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
        if not self._llama_cpp.llama_state_seq_set_data(self.llm._ctx.ctx, data, len(state), 0):
            self._forget_live_state()
            return 0
        # llama-cpp-python reuses the matching prefix of these tokens and evaluates the rest.
        self.llm.input_ids[: len(best)] = best
        self.llm.n_tokens = len(best)
        self.llm._requires_eval = True
        return best_length

    def _forget_live_state(self) -> None:
        self.llm._ctx.kv_cache_clear()
        self.llm.n_tokens = 0


def _common_prefix(a, b) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length
