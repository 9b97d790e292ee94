"""The image model: one litellm call per picture, made by a deferred job and never on a
chapter's stream. The bytes come back as the provider sent them (base64 in the reply, or a
URL fetched at once); what kind of image they are is judged by the job.
"""
from __future__ import annotations

import asyncio
import base64
import io
from dataclasses import dataclass

import aiohttp
from PIL import Image

from service.config import Settings
from service.llm.client import _litellm

# A picture is a few megabytes at most; a provider that sends far more is refused.
MAX_PICTURE_BYTES = 16 * 1024 * 1024
# What every browser shows in an <img>.
BROWSER_FORMATS = ("PNG", "JPEG", "WEBP", "GIF")


@dataclass(frozen=True)
class Drawing:
    data: bytes
    content_type: str


class ImageFailed(Exception):
    """The image model answered, but with no picture."""


class ImageClient:
    def __init__(self, settings: Settings):
        self.settings = settings

    async def load(self) -> None:
        """Import litellm in a thread before the first picture: its import takes seconds,
        which on the event loop would stall every chapter streaming at that moment."""
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
        reply = await _litellm().aimage_generation(prompt=prompt, **self._call_args())
        picture = reply.data[0] if reply.data else None
        if picture is not None and picture.b64_json:
            if len(picture.b64_json) > MAX_PICTURE_BYTES * 4 // 3 + 4:
                raise ImageFailed("the image model sent more than a picture's worth of data")
            # Decoding and reading megabytes is work for a thread, not for the streams' loop.
            return await asyncio.to_thread(_drawing, picture.b64_json)
        if picture is not None and picture.url:
            data = await _fetch(picture.url, self.settings.job_timeout)
            return await asyncio.to_thread(_drawing, None, data)
        raise ImageFailed("the image model's reply held no picture")


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
            data = await response.content.read(MAX_PICTURE_BYTES + 1)
    if len(data) > MAX_PICTURE_BYTES:
        raise ImageFailed("the image model's picture is larger than a picture should be")
    return data
