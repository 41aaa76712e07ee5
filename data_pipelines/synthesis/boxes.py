"""Foreground boxes of a perception sample: checking them and the pixels they cover.

A box is ``[x1, y1, x2, y2]`` in pixels with ``0 <= x1 < x2 <= width`` and ``0 <= y1 < y2 <= height``. It covers
every pixel it touches: columns ``floor(x1)`` to ``ceil(x2) - 1`` and rows ``floor(y1)`` to ``ceil(y2) - 1``, so a
fractional box never loses the edge of its object.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image

Box = Sequence[float]


class GeneratorError(ValueError):
    """A generator cannot run: bad boxes or labels, or a missing or unusable model."""


def check_boxes(boxes: Sequence[Box], labels: Sequence[str], size: tuple[int, int]) -> None:
    """GeneratorError naming the first box that is malformed or not inside an image of `size` (width, height)."""
    width, height = size
    if len(boxes) != len(labels):
        raise GeneratorError(f"{len(boxes)} boxes but {len(labels)} labels; give one label per box")
    for i, box in enumerate(boxes):
        if len(box) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box):
            raise GeneratorError(f"boxes[{i}] = {list(box)} is not four finite numbers [x1, y1, x2, y2]")
        x1, y1, x2, y2 = box
        if not (0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height):
            raise GeneratorError(
                f"boxes[{i}] = {list(box)} is not inside the {width}x{height} image "
                f"(need 0 <= x1 < x2 <= {width} and 0 <= y1 < y2 <= {height})"
            )


def box_slices(box: Box) -> tuple[slice, slice]:
    """The (rows, columns) slices of the pixels `box` covers."""
    x1, y1, x2, y2 = box
    return slice(math.floor(y1), math.ceil(y2)), slice(math.floor(x1), math.ceil(x2))


def foreground_mask(size: tuple[int, int], boxes: Sequence[Box]) -> np.ndarray:
    """Boolean ``[height, width]`` mask of the pixels any box covers."""
    width, height = size
    mask = np.zeros((height, width), dtype=bool)
    for box in boxes:
        mask[box_slices(box)] = True
    return mask


def paste_foreground(source: Image.Image, background: np.ndarray, boxes: Sequence[Box]) -> Image.Image:
    """`background` (uint8 ``[height, width, 3]``) with every box's pixels copied from `source` (RGB) unchanged."""
    pixels = np.asarray(source.convert("RGB"))
    out = background.copy()
    mask = foreground_mask(source.size, boxes)
    out[mask] = pixels[mask]
    return Image.fromarray(out, "RGB")
