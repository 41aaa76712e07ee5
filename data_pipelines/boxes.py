"""Bounding boxes ``[x1, y1, x2, y2]`` in absolute pixels: reading them from model text, IoU, and conversion
between an image's original size and the size Qwen2.5-VL resizes it to.

The model sees the resized image (`data_pipelines.image_size.resized_image_size`), so its answers are in
resized pixels: ground truth is converted to resized pixels with `to_resized`, predictions back with
`to_original`. Sizes are ``(width, height)``; ``x`` scales with the width, ``y`` with the height.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

Box = tuple[float, float, float, float]
"""``(x1, y1, x2, y2)``: left, top, right, bottom edges in pixels."""
Size = tuple[int, int]
"""``(width, height)`` in pixels."""

BOX_KEYS: tuple[str, ...] = ("bbox_2d", "bbox")
"""Keys of an object that hold its box (Qwen2.5-VL writes ``{"bbox_2d": [...], "label": ...}``)."""
ORIGINAL_DECIMALS = 6
"""`to_original` rounds to a micro-pixel, so original → resized → original returns coordinates written with
up to this many decimals exactly."""
ANSWER_DECIMALS = 2
"""Decimals an answer string keeps (`format_box`)."""

_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
_BRACKETED_BOX = re.compile(rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]")
_CODE_FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.DOTALL)


def box_from_value(value: Any) -> Box | None:
    """The box a JSON value holds: four finite numbers, or an object with a `BOX_KEYS` entry holding them."""
    if isinstance(value, dict):
        inner = next((value[key] for key in BOX_KEYS if key in value), None)
        return None if inner is None or isinstance(inner, dict) else box_from_value(inner)
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        return None
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value):
        return None
    x1, y1, x2, y2 = (float(v) for v in value)
    return x1, y1, x2, y2


def boxes_from_value(value: Any) -> list[Box] | None:
    """The boxes a JSON value holds: one box, or a list whose every item is a box (``[]`` is no boxes)."""
    single = box_from_value(value)
    if single is not None:
        return [single]
    if not isinstance(value, list):
        return None
    boxes = [box_from_value(item) for item in value]
    return None if any(box is None for box in boxes) else boxes


def parse_boxes(text: str) -> list[Box] | None:
    """Every box an answer gives, in order; None when it gives none in a form this reads. Never raises.

    Read forms: JSON (inside a ```json fence or not) of one box ``[12, 30, 50, 80]``, a list of boxes, a
    ``{"bbox_2d": [...], "label": ...}`` object or a list of them; ``[]`` is an empty list. Other text is
    searched for bracketed groups of four numbers (``"the box is [12, 30, 50, 80]"``).
    """
    fenced = _CODE_FENCE.search(text)
    body = (fenced.group(1) if fenced else text).strip()
    try:
        boxes = boxes_from_value(json.loads(body))
    except (ValueError, RecursionError):
        boxes = None
    if boxes is not None:
        return boxes
    found = [box_from_value([float(n) for n in match.groups()]) for match in _BRACKETED_BOX.finditer(text)]
    kept = [box for box in found if box is not None]
    return kept or None


def parse_box(text: str) -> Box | None:
    """The first box an answer gives (see `parse_boxes`), or None. Never raises."""
    boxes = parse_boxes(text)
    return boxes[0] if boxes else None


def box_area(box: Box) -> float:
    """Area of `box`; 0 for a box whose right edge is not right of its left edge (or bottom not below top)."""
    x1, y1, x2, y2 = box
    return max(0.0, x2 - x1) * max(0.0, y2 - y1)


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes, in [0, 1]; 0 when either has no area."""
    inter = box_area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))
    union = box_area(a) + box_area(b) - inter
    return inter / union if union > 0 else 0.0


def box_problem(box: Box, size: Size) -> str | None:
    """Why `box` is not a box inside an image of `size`, or None when it is one."""
    x1, y1, x2, y2 = box
    width, height = size
    if not (x1 < x2 and y1 < y2):
        return f"{format_box(box)} is not [x1, y1, x2, y2] with x1 < x2 and y1 < y2"
    if x1 < 0 or y1 < 0 or x2 > width or y2 > height:
        return f"{format_box(box)} lies outside the {width}x{height} image"
    return None


def scale_box(box: Box, from_size: Size, to_size: Size) -> Box:
    """`box` in the pixels of an image of `from_size` stretched to `to_size`: each coordinate times the exact ratio
    of the sides, rounded once."""
    (from_w, from_h), (to_w, to_h) = from_size, to_size
    if min(from_w, from_h, to_w, to_h) <= 0:
        raise ValueError(f"image sizes must be positive, got {from_size} and {to_size}")
    x1, y1, x2, y2 = (
        float(Fraction(value) * to_side / from_side)
        for value, to_side, from_side in zip(box, (to_w, to_h, to_w, to_h), (from_w, from_h, from_w, from_h))
    )
    return x1, y1, x2, y2


def to_resized(box: Box, original: Size, resized: Size) -> Box:
    """A box in original image pixels as the model sees it, in resized pixels."""
    return scale_box(box, original, resized)


def to_original(box: Box, resized: Size, original: Size) -> Box:
    """A box in resized pixels (a model's answer) in original image pixels, rounded to `ORIGINAL_DECIMALS`."""
    x1, y1, x2, y2 = (round(value, ORIGINAL_DECIMALS) for value in scale_box(box, resized, original))
    return x1, y1, x2, y2


def format_box(box: Sequence[float]) -> str:
    """``"[x1, y1, x2, y2]"`` with whole numbers written without decimals, others to `ANSWER_DECIMALS` decimals."""
    return "[" + ", ".join(_number(value) for value in box) + "]"


def format_boxes(boxes: Sequence[Sequence[float]]) -> str:
    """``"[[x1, y1, x2, y2], ...]"`` (``"[]"`` for none), each box as `format_box` writes it."""
    return "[" + ", ".join(format_box(box) for box in boxes) + "]"


def _number(value: float) -> str:
    rounded = round(float(value), ANSWER_DECIMALS)
    return str(int(rounded)) if rounded.is_integer() else repr(rounded)
