"""The image model: one call per picture, made by a deferred job and never on a chapter's
stream. The bytes come back as the provider sent them (base64 in the reply, or a URL fetched
at once); what kind of image they are is judged by the job.

litellm reaches every image provider. An image model on an OpenAI-compatible server
(`openai/...` with IMAGE_API_BASE or LLM_API_BASE) is called directly with aiohttp, as the
chapters are: litellm's call cost about 10 ms of the event loop's time per picture, and
fifty players starting at once (three pictures each for the first chapter's choices) held
every stream behind them for hundreds of milliseconds.
"""
from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
from dataclasses import dataclass

import aiohttp
from PIL import Image

from service.config import Settings
from service.llm.client import _litellm
from service.llm.openai_http import pooled_session

# A picture is a few megabytes at most; a provider that sends far more is refused.
MAX_PICTURE_BYTES = 16 * 1024 * 1024
# What every browser shows in an <img>.
BROWSER_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")


@dataclass(frozen=True)
class Drawing:
    data: bytes
    content_type: str
    digest: str = ""  # its SHA-256, in hex: given where already known, else worked out here

    def __post_init__(self) -> None:
        if not self.digest:
            object.__setattr__(self, "digest", hashlib.sha256(self.data).hexdigest())


class ImageFailed(Exception):
    """The image model answered, but with no picture."""


class ImageClient:
    def __init__(self, settings: Settings, direct: bool | None = None):
        """`direct`: call an OpenAI-compatible server without litellm; None: when the model
        is `openai/...` on a base URL (tests choose, to check both ways)."""
        self.settings = settings
        api_base, self._api_key = settings.image_endpoint
        if direct is None:
            direct = bool(api_base) and settings.image_model.startswith("openai/")
        self._images_url = f"{api_base.rstrip('/')}/images/generations" if direct else ""
        self._http: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()

    async def load(self) -> None:
        """Import litellm in a thread before the first picture: its import takes seconds,
        which on the event loop would stall every chapter streaming at that moment."""
        if not self._images_url:
            await asyncio.to_thread(_litellm)

    def _call_args(self) -> dict:
        model = self.settings.image_model
        # The job queue retries a failed picture: neither litellm nor the OpenAI client may.
        args: dict = {"model": model, "n": 1, "num_retries": 0, "max_retries": 0, "timeout": self.settings.job_timeout}
        api_base, api_key = self.settings.image_endpoint
        if api_base:
            args["api_base"] = api_base
            # A local image server wants no key, but the OpenAI client will not go without one.
            api_key = api_key or ("none" if model.startswith("openai/") else None)
        if api_key:
            args["api_key"] = api_key
        if self.settings.image_size:
            args["size"] = self.settings.image_size
        return args

    async def draw(self, prompt: str) -> Drawing:
        if self._images_url:
            b64, url = await self._draw_direct(prompt)
        else:
            reply = await _litellm().aimage_generation(prompt=prompt, **self._call_args())
            picture = reply.data[0] if reply.data else None
            b64, url = (picture.b64_json, picture.url) if picture is not None else (None, None)
        if b64:
            if len(b64) > MAX_PICTURE_BYTES * 4 // 3 + 4:
                raise ImageFailed("the image model sent more than a picture's worth of data")
            # Decoding and reading megabytes is work for a thread, not for the streams' loop.
            return await asyncio.to_thread(_drawing, b64)
        if url:
            data = await _fetch(url, self.settings.job_timeout)
            return await asyncio.to_thread(_drawing, None, data)
        raise ImageFailed("the image model's reply held no picture")

    async def _draw_direct(self, prompt: str) -> tuple[str | None, str | None]:
        """(base64, URL) of the picture in an OpenAI-compatible server's reply."""
        body = {"model": self.settings.image_model.split("/", 1)[1], "prompt": prompt, "n": 1}
        if self.settings.image_size:
            body["size"] = self.settings.image_size
        if self._http is None or self._http.closed:
            # As the chapters' client does: an idle connection goes before the server drops it.
            self._http = pooled_session(self._api_key)
        timeout = aiohttp.ClientTimeout(total=self.settings.job_timeout)
        async with self._http.post(self._images_url, json=body, timeout=timeout) as response:
            if response.status >= 400:
                detail = (await response.content.read(200)).decode(errors="replace")
                raise ImageFailed(f"the image server answered {response.status}: {detail}")
            reply = await _read_capped(response, MAX_PICTURE_BYTES * 4 // 3 + 64 * 1024)
        return await asyncio.to_thread(_picture_in_reply, reply)


def _picture_in_reply(reply: bytes) -> tuple[str | None, str | None]:
    try:
        picture = json.loads(reply)["data"][0]
        return picture.get("b64_json"), picture.get("url")
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ImageFailed(f"the image server's reply is not an images reply ({type(exc).__name__})") from exc


def _drawing(b64: str | None, data: bytes = b"") -> Drawing:
    if b64 is not None:
        data = base64.b64decode(b64)
    return Drawing(data, content_type(data))


def content_type(data: bytes) -> str:
    """The MIME type the bytes really are; ImageFailed unless they are an image every browser shows."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            kind = image.format
            image.verify()
    except Exception as exc:  # Pillow raises many kinds for bytes that are no image
        raise ImageFailed(f"the image model sent something that is not a picture ({type(exc).__name__})") from exc
    if kind not in BROWSER_FORMATS:
        raise ImageFailed(f"the image model sent a {kind} picture, which browsers do not show")
    return Image.MIME[kind]


async def _fetch(url: str, timeout: float) -> bytes:
    """A picture the provider left at a URL, copied at once: pages only ever show our own copy."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async with session.get(url) as response:
            response.raise_for_status()
            return await _read_capped(response, MAX_PICTURE_BYTES)


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """The whole body, or ImageFailed once it passes `cap` bytes (a picture is never that big)."""
    data = bytearray()
    async for chunk in response.content.iter_any():
        data += chunk
        if len(data) > cap:
            raise ImageFailed("the image model sent more than a picture's worth of data")
    return bytes(data)
