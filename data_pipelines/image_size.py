"""The size Qwen2.5-VL resizes an image to (qwen-vl-utils 0.0.14 ``smart_resize``), shared by the data readers
and the media loaders, and the image pixel bounds the project uses by default."""

from __future__ import annotations

import math

MAX_ASPECT_RATIO = 200
"""qwen-vl-utils ``MAX_RATIO``: ``smart_resize`` refuses images whose long/short side ratio exceeds it."""

IMAGE_FACTOR = 28
"""Qwen2.5-VL's resize factor: 14-pixel patches merged 2x2."""
IMAGE_MIN_PIXELS = 4 * 28 * 28
"""Default smallest image area (the ``data.image.min_pixels`` default)."""
IMAGE_MAX_PIXELS = 256 * 28 * 28
"""Default largest image area (the ``data.image.max_pixels`` default, Video-R1's 256 * 28 * 28)."""


def smart_resize(height: int, width: int, factor: int, min_pixels: float, max_pixels: float) -> tuple[int, int]:
    """Target (height, width): multiples of ``factor``, area within [min_pixels, max_pixels], aspect kept.

    qwen-vl-utils ``smart_resize``: round each side to the nearest multiple (Python's half-to-even ``round``,
    at least one factor); if the area exceeds ``max_pixels`` scale by ``sqrt(H*W/max_pixels)`` and floor, if it
    is below ``min_pixels`` scale up by ``sqrt(min_pixels/(H*W))`` and ceil (small videos are upscaled).
    Raises ValueError for an aspect ratio above 200 or min_pixels > max_pixels.
    """
    if min_pixels > max_pixels:
        raise ValueError(f"min_pixels ({min_pixels}) must be <= max_pixels ({max_pixels})")
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    ratio = max(height, width) / min(height, width)
    if ratio > MAX_ASPECT_RATIO:
        raise ValueError(f"aspect ratio must be at most {MAX_ASPECT_RATIO}, got {ratio} ({height}x{width})")
    h = max(factor, round(height / factor) * factor)
    w = max(factor, round(width / factor) * factor)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = math.floor(height / beta / factor) * factor
        w = math.floor(width / beta / factor) * factor
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / factor) * factor
        w = math.ceil(width * beta / factor) * factor
    return h, w


def resized_image_size(
    width: int,
    height: int,
    *,
    min_pixels: float = IMAGE_MIN_PIXELS,
    max_pixels: float = IMAGE_MAX_PIXELS,
    factor: int = IMAGE_FACTOR,
) -> tuple[int, int]:
    """``(width, height)`` the model sees an image of ``width x height`` at (`smart_resize`, in PIL's order)."""
    new_height, new_width = smart_resize(height, width, factor, min_pixels, max_pixels)
    return new_width, new_height
