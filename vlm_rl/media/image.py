"""Image loading with qwen-vl-utils 0.0.14 ``fetch_image`` semantics."""

from __future__ import annotations

import os

from PIL import Image

from vlm_rl.media.sampling import ImageSampling, smart_resize
from vlm_rl.media.video import MediaError, _check_file, _one_line


def _to_rgb(image: Image.Image) -> Image.Image:
    """qwen-vl-utils ``to_rgb``: RGBA is composited on white, every other mode is ``convert("RGB")``."""
    if image.mode == "RGBA":
        background = Image.new("RGB", image.size, (255, 255, 255))
        background.paste(image, mask=image.split()[3])
        return background
    return image.convert("RGB")


def read_image(path: str | os.PathLike[str], sampling: ImageSampling) -> Image.Image:
    """Load ``path`` as RGB and resize it to ``smart_resize`` of its size, like qwen-vl-utils ``fetch_image``.

    The resize is PIL bicubic (``Image.resize``'s default for RGB, which fetch_image relies on). Raises
    MediaError for a missing, empty, unreadable or truncated file, or an aspect ratio above 200.
    """
    text = _check_file(path, "image")
    try:
        with Image.open(text) as opened:
            opened.load()
            image = _to_rgb(opened)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        reason = _one_line(e)
        raise MediaError(f"cannot read image {text} ({reason}); re-encode it or remove it from the dataset") from e
    width, height = image.size
    try:
        new_height, new_width = smart_resize(
            height, width, sampling.factor, sampling.min_pixels, sampling.max_pixels
        )
    except ValueError as e:
        raise MediaError(f"image {text} cannot be resized: {e}; crop it or remove it from the dataset") from e
    return image.resize((new_width, new_height), Image.Resampling.BICUBIC)
