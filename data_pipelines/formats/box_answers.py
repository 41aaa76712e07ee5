"""Ground-truth boxes of ``box`` and ``detection`` records: checked against the image in its original pixels and
rewritten in the pixels of the resized image the model sees.

Datasets write boxes in original image pixels; the model answers in the pixels of the image Qwen2.5-VL resizes
to (`data_pipelines.image_size`), with the project's image pixel bounds (``data.image``) by default. A sample
keeps its original boxes and both sizes in `Sample.extra` (see `box_extra`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from data_pipelines.boxes import (
    Box,
    Size,
    box_from_value,
    box_problem,
    boxes_from_value,
    format_box,
    format_boxes,
    to_resized,
)
from data_pipelines.image_size import IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS, resized_image_size
from data_pipelines.record_files import short
from data_pipelines.schema import RecordError

BOX_TYPES: tuple[str, ...] = ("box", "detection")
"""Problem types whose answers are boxes."""
_SHAPES = {
    "box": "one box [x1, y1, x2, y2] or {\"bbox_2d\": [x1, y1, x2, y2]}",
    "detection": "a list of boxes [[x1, y1, x2, y2], ...] ([] for none)",
}


class ImageBoxes:
    """Reads image sizes (cached per file) and turns a record's box answer into the resized-pixel answer."""

    def __init__(self, *, min_pixels: int = IMAGE_MIN_PIXELS, max_pixels: int = IMAGE_MAX_PIXELS) -> None:
        if not 0 < min_pixels <= max_pixels:
            raise ValueError(f"image pixel bounds need 0 < min_pixels <= max_pixels, got {min_pixels} and {max_pixels}")
        self.min_pixels, self.max_pixels = min_pixels, max_pixels
        self._sizes: dict[Path, Size] = {}

    def image_size(self, path: Path, label: str, key: str) -> Size:
        """``(width, height)`` of the image at `path`; RecordError naming `label` and `key` when PIL cannot read it."""
        if path not in self._sizes:
            try:
                with Image.open(path) as image:
                    self._sizes[path] = image.size
            except (OSError, ValueError, Image.DecompressionBombError) as exc:
                raise RecordError(
                    f"{label}: field '{key}': cannot read the size of image {path} ({exc}); "
                    "re-encode it or drop the record"
                ) from None
        return self._sizes[path]

    def answer(
        self, text: str, problem_type: str, image: Path, *, label: str, field: str, image_key: str
    ) -> tuple[str, dict[str, Any]]:
        """``(answer in resized pixels, extra fields)`` of a ground truth `text` in original pixels of `image`.

        RecordError naming `label` and `field` when the text is not the problem type's box shape or a box is not
        inside the image (`image_key` names the record's image field when the image cannot be read).
        """
        boxes = ground_truth_boxes(text, problem_type, label=label, field=field)
        size = self.image_size(image, label, image_key)
        for box in boxes:
            problem = box_problem(box, size)
            if problem is not None:
                raise RecordError(f"{label}: field '{field}': box {problem}; fix the box or the image")
        try:
            resized = resized_image_size(*size, min_pixels=self.min_pixels, max_pixels=self.max_pixels)
        except ValueError as exc:
            raise RecordError(
                f"{label}: field '{image_key}': image {image} cannot be resized ({exc}); drop the record"
            ) from None
        scaled = [to_resized(box, size, resized) for box in boxes]
        text = format_box(scaled[0]) if problem_type == "box" else format_boxes(scaled)
        return text, box_extra(boxes, problem_type, size, resized)


def ground_truth_boxes(text: str, problem_type: str, *, label: str, field: str) -> list[Box]:
    """The boxes a ground-truth answer writes as JSON: exactly one for ``box``, any number for ``detection``."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        value = None
    if problem_type == "box":
        box = box_from_value(value)
        boxes = None if box is None else [box]
    else:
        boxes = boxes_from_value(value)
    if boxes is None:
        raise RecordError(
            f"{label}: field '{field}': a {problem_type} answer must be {_SHAPES[problem_type]}, got {short(text)}"
        )
    return boxes


def box_extra(boxes: list[Box], problem_type: str, original: Size, resized: Size) -> dict[str, Any]:
    """The `Sample.extra` fields of a box sample: its boxes in original pixels (``box_original`` for ``box``,
    ``boxes_original`` for ``detection``) and the ``image_size`` and ``resized_size`` ``[width, height]``."""
    kept: Any = list(boxes[0]) if problem_type == "box" else [list(box) for box in boxes]
    key = "box_original" if problem_type == "box" else "boxes_original"
    return {key: kept, "image_size": list(original), "resized_size": list(resized)}
