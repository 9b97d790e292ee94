"""Settings from the environment (and an optional `.env` file), in one place.

The names of the first block are the outside contract; the rest are operator knobs.
"""
from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

LOCAL_PREFIX = "lanternpath-local/"
LOCAL_MODEL = f"{LOCAL_PREFIX}smollm2"
ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    llm_model: str = LOCAL_MODEL
    llm_api_base: str | None = None
    llm_api_key: str | None = None
    helper_model: str | None = None
    llm_fallback_models: str = ""
    image_model: str | None = None
    # Unset: LLM_API_BASE (and LLM_API_KEY with it), or the image provider's own variables.
    image_api_base: str | None = None
    image_api_key: str | None = None
    database_url: str = "sqlite+aiosqlite:///lanternpath.db"
    # Several server processes (`serve --workers N`, several hosts) share what is not in the
    # database through Redis: the events of chapters being written, wake-ups, the start
    # limit. Unset: one process, all of it in memory.
    redis_url: str | None = None
    # With REDIS_URL: a chapter's writer renews its lease this often (a third of it); a
    # chapter whose lease lapsed with no end in its stream was cut off, and is settled as
    # interrupted. A job's lease likewise: a job whose lease lapsed is taken by another process.
    writer_lease_seconds: float = Field(default=10.0, gt=0)
    job_lease_seconds: float = Field(default=30.0, gt=0)

    # How a chapter is written.
    # Length cap of a chapter's reply. Unset: 700, or 320 for the embedded model, which
    # holds a story together for about 150-200 words and drifts after that.
    chapter_max_tokens: int | None = Field(default=None, ge=50)
    # A chapter whose kept text is shorter than this (a model that stopped early, sentences the
    # screen took out) is asked to go on once; 0: never.
    chapter_min_words: int = Field(default=80, ge=0)
    # Characters of earlier chapters in a chapter prompt; unset: 1200 for the embedded model
    # (reading the prompt is most of its time to first token), 3300 otherwise.
    prompt_context_chars: int | None = Field(default=None, ge=0)
    # Shown text past this is cut at the next sentence end (a runaway model's cap).
    chapter_max_chars: int = Field(default=4000, ge=500)
    # Words of a model's loop that may stream before the loop is recognised (the finished
    # chapter drops them, and `replace-content` takes them off the page). Up to 4: ordinary
    # prose streams with no wait, and no sentence of a loop shows twice. 0: not a word of a
    # loop shows, but phrases that repeat earlier text wait until they stop repeating
    # (measured: 140-180 ms stalls at 20 ms a token).
    loop_preview_words: int = Field(default=4, ge=0, le=4)
    # A file of more terms for the child-safety screen, in the form of
    # service/content/screen.yaml (categories to lists of words and phrases).
    screen_terms_file: Path | None = None
    # Off only to measure what the stream's screen costs (`python -m benchmarks --screen`):
    # never for children. Choices, summaries and descriptions are screened either way.
    screen_stream: bool = True
    # Unset: 0.8, or 0.45 for the embedded model. Measured on SmolLM2-135M: at 0.6 it drifts
    # into new kings, dragons and places every few sentences; at 0.3 to 0.5 it stays with the
    # scene, and the repetition penalty keeps the lower end from looping.
    chapter_temperature: float | None = Field(default=None, ge=0, le=2)
    # Sampling of the embedded model only (hosted providers keep their own defaults).
    # Nucleus sampling cuts the long tail of unlikely words that derails a small model.
    local_top_p: float = Field(default=0.9, gt=0, le=1)
    # Penalties on repeating recent tokens; 1.0 / 0 turn them off.
    local_repeat_penalty: float = Field(default=1.15, ge=1)
    local_presence_penalty: float = Field(default=0.0, ge=0, le=2)
    # llama.cpp's DRY sampler on the embedded model's chapters: how hard a token that would
    # lengthen a run of words already written is pushed away; 0 turns it off. Measured on
    # SmolLM2-135M over the same 30 chapter prompts: with 0.8, 3 to 7 chapters were cut off as
    # loops instead of 21, and the median chapter was 210 to 235 words instead of 131.
    local_dry_multiplier: float = Field(default=0.8, ge=0)
    # The end of a chapter is held off until this many tokens are written: the small model
    # otherwise sometimes stops after one sentence.
    local_min_tokens: int = Field(default=150, ge=0)
    # Past this many tokens the embedded model's chapter ends at its next sentence end: with
    # DRY it seldom loops or stops by itself, and the length cap (CHAPTER_MAX_TOKENS) cut eight
    # of ten chapters in the middle of a sentence. 0: only the cap ends it.
    local_end_tokens: int = Field(default=240, ge=0)
    # Helper replies (summaries, characters, choices) are held to a format by a grammar; a
    # low temperature and a firmer penalty keep their content plain and free of loops.
    helper_temperature: float = Field(default=0.3, ge=0, le=2)
    # A helper asked again (its choices or summary were unusable) samples warmer: at the
    # first temperature the embedded model gives the same reply two and three times over.
    helper_retry_temperature: float = Field(default=0.8, ge=0, le=2)
    local_helper_repeat_penalty: float = Field(default=1.3, ge=1)
    # Chapters written at once; the others wait their turn. Unset: 1 for the embedded model
    # (its one worker writes one chapter at a time anyway), 100 otherwise (on two cores the
    # server's own work saturates a core near 200 streams). 0: no cap.
    max_concurrent_chapters: int | None = Field(default=None, ge=0)
    helper_max_tokens: int = Field(default=300, ge=20)
    # Unset: 20 s, or 90 s for the embedded model, whose single worker serves one chapter
    # at a time, so a second player's first token waits for the first player's chapter.
    first_token_timeout: float | None = Field(default=None, gt=0)
    idle_timeout: float = Field(default=15.0, gt=0)
    helper_timeout: float = Field(default=60.0, gt=0)
    # Deferred work. Unset: 2 when the embedded model writes the summaries (its one worker
    # serves them one at a time, after the chapters), 16 for a hosted helper, whose calls
    # are mostly waiting: a chapter's two calls of about 2 s each, at the 4 chapters a second
    # of a process at capacity (README, "Capacity model"), keep 16 workers busy. Too few, and
    # the queue grows without end, and later chapters are written without the summaries.
    # 0 runs no workers: jobs wait in the table (the benchmark compares streams without them).
    job_concurrency: int | None = Field(default=None, ge=0)
    job_timeout: float = Field(default=120.0, gt=0)
    job_attempts: int = Field(default=3, ge=1)
    job_backoff_seconds: float = Field(default=2.0, gt=0)
    # Pictures (only with IMAGE_MODEL): image jobs at once, in workers of their own beside
    # JOB_CONCURRENCY's, so a slow image model never holds up the summaries the next
    # chapters are written from.
    image_concurrency: int = Field(default=2, ge=0)
    # Asked of the image model as is ("1536x1024"); unset: its own default. Pages show
    # every picture in a 3:2 frame, cropped to fit.
    image_size: str | None = None
    # Requests.
    # Adventures one client address may start at once, and the seconds after which it may
    # start one more (a leaky bucket). 0 turns the limit off.
    start_limit_burst: int = Field(default=60, ge=0)
    # One start a second after the burst: a flood is refused, and a client that waited out a
    # Retry-After is never kept waiting long.
    start_limit_seconds: float = Field(default=1.0, gt=0)
    # Proxies (comma-separated addresses or networks, "*" for any) whose X-Forwarded-For and
    # X-Forwarded-Proto are believed: the client address and scheme come from them. Unset:
    # none, every request's address is its connection's.
    forwarded_allow_ips: str = ""
    # Signs the owner cookie. Unset: a key made once and kept in the database, shared by
    # every process on it and kept across restarts.
    secret_key: SecretStr | None = None
    max_body_bytes: int = Field(default=16 * 1024, ge=1024)
    generation_keep_seconds: float = Field(default=600.0, ge=0)
    # For tests and benchmarks only: every adventure gets this seed, so its plan, lesson
    # questions and agency offer are known in advance. Unset (always, for players): a random
    # seed for each adventure.
    adventure_seed: int | None = Field(default=None, ge=0, lt=2**31)

    @cached_property
    def chapter_model(self) -> str:
        return self.llm_model

    @cached_property
    def summary_model(self) -> str:
        return self.helper_model or self.llm_model

    @cached_property
    def fallback_models(self) -> list[str]:
        return [m.strip() for m in self.llm_fallback_models.split(",") if m.strip()]

    @property
    def chapter_tokens(self) -> int:
        return self._for_model(self.chapter_max_tokens, local=320, hosted=700)

    @property
    def chapter_sampling_temperature(self) -> float:
        return self._for_model(self.chapter_temperature, local=0.45, hosted=0.8)

    @property
    def first_token_limit(self) -> float:
        return self._for_model(self.first_token_timeout, local=90.0, hosted=20.0)

    @property
    def context_chars(self) -> int:
        return self._for_model(self.prompt_context_chars, local=1200, hosted=3300)

    @property
    def chapter_capacity(self) -> int:
        return self._for_model(self.max_concurrent_chapters, local=1, hosted=100)

    @property
    def job_workers(self) -> int:
        return self._for_model(self.job_concurrency, local=2, hosted=16, model=self.summary_model)

    @property
    def shared(self) -> bool:
        """Whether several processes may serve at once (REDIS_URL is set)."""
        return bool(self.redis_url)

    @property
    def pictures(self) -> bool:
        return bool(self.image_model)

    @property
    def image_endpoint(self) -> tuple[str | None, str | None]:
        """(base URL, key) of the image model's server; None: the provider's own."""
        if self.image_api_base:
            return self.image_api_base, self.image_api_key
        return self.llm_api_base, self.image_api_key or self.llm_api_key

    @property
    def uses_local_model(self) -> bool:
        return self.llm_model.startswith(LOCAL_PREFIX)

    def _for_model(self, given, *, local, hosted, model: str | None = None):
        """A setting as given, or else its default for the embedded model or a hosted one:
        the chapters' model, or `model` (the helper's, for the jobs)."""
        if given is not None:
            return given
        return local if (model or self.llm_model).startswith(LOCAL_PREFIX) else hosted

    @property
    def templates_dir(self) -> Path:
        return ROOT / "templates"

    @property
    def static_dir(self) -> Path:
        return ROOT / "static"
