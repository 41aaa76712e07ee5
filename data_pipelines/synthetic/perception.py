"""The opt-in perception tasks: PNG images of coloured shapes of two sizes, answered with pixel boxes.

The image is cut into ``CELL``-pixel cells and every shape sits in its own cell, at least one pixel inside it,
so no two shapes touch and each shape's box ``[x, y, x + side, y + side]`` is exactly the extent of its
pixels. Sides are multiples of 28 within the default image pixel bounds, so the model sees the image at its
own size and the boxes need no conversion.

- ``rec``: "Where is the small red triangle?"; the named size, colour and shape fit exactly one shape, and
  one distractor differs from it in a single attribute. The answer is one box.
- ``detection``: "Where is every circle?"; one to three shapes of that kind among others. The answer is the
  list of their boxes, top to bottom, then left to right.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from data_pipelines.boxes import format_box, format_boxes
from data_pipelines.image_size import IMAGE_FACTOR, resized_image_size
from data_pipelines.synthetic.scenes import TaskInstance, shape_mask
from data_pipelines.synthetic.vocabulary import (
    BACKGROUND,
    COLORS,
    PERCEPTION_QUESTIONS,
    PERCEPTION_TASKS,
    PERCEPTION_THOUGHTS,
    SHAPES,
    SIZE_WORDS,
)

CELL = 28
"""Pixels per side of the cell each shape is placed in."""
SIDES: dict[str, int] = dict(zip(SIZE_WORDS, (12, 24)))
"""Side in pixels of a shape of each size word; the largest leaves a pixel free on both sides of its cell."""
MAX_DETECTED = 3
"""Most shapes of the asked kind in a detection image."""
PROBLEM_TYPES: dict[str, str] = {"rec": "box", "detection": "detection"}

Attributes = tuple[str, str, str]
"""``(size word, colour, shape)``."""


@dataclass(frozen=True)
class PerceptionSettings:
    """Image side and how many shapes an image holds; validated on construction."""

    size: int = 112
    min_objects: int = 3
    max_objects: int = 6

    def __post_init__(self) -> None:
        if self.size % IMAGE_FACTOR or resized_image_size(self.size, self.size) != (self.size, self.size):
            raise ValueError(
                f"PerceptionSettings.size must be a multiple of {IMAGE_FACTOR} whose square lies within the default "
                f"image pixel bounds (so the model sees it unresized), e.g. 112 or 224; got {self.size}"
            )
        if not 2 <= self.min_objects <= self.max_objects:
            raise ValueError(
                "PerceptionSettings needs 2 <= min_objects <= max_objects, "
                f"got {self.min_objects} and {self.max_objects}"
            )
        if self.max_objects > self.cells:
            raise ValueError(
                f"PerceptionSettings.max_objects={self.max_objects} exceeds the {self.cells} cells of a {self.size} px "
                "image; lower it or raise size"
            )

    @property
    def cells(self) -> int:
        """Number of cells, one shape each at most."""
        return (self.size // CELL) ** 2

    def info(self) -> dict[str, Any]:
        """The settings plus the shape sides, for ``dataset_info.json``."""
        return {**dataclasses.asdict(self), "sides": dict(SIDES)}


@dataclass(frozen=True)
class PlacedShape:
    """One drawn shape: its attributes and its top-left corner ``(x, y)``."""

    size: str
    color: str
    shape: str
    corner: tuple[int, int]

    @property
    def box(self) -> list[int]:
        """``[x1, y1, x2, y2]``: the pixel edges around the shape."""
        x, y = self.corner
        side = SIDES[self.size]
        return [x, y, x + side, y + side]

    def as_record(self) -> dict[str, Any]:
        return {"size": self.size, "color": self.color, "shape": self.shape, "box": self.box}


def make_perception_image(
    task: str, rng: np.random.Generator, settings: PerceptionSettings = PerceptionSettings()
) -> tuple[TaskInstance, dict[str, Any]]:
    """Draw one `task` image: the instance (frames ``[1, size, size, 3]``) and the record's ``objects`` field."""
    if task not in PERCEPTION_TASKS:
        raise ValueError(f"unknown perception task {task!r}; choose from {PERCEPTION_TASKS}")
    count = int(rng.integers(settings.min_objects, settings.max_objects + 1))
    attributes, facts = _rec(rng, count) if task == "rec" else _detection(rng, count)
    shapes = _place(rng, settings, attributes)
    if task == "rec":
        answer = format_box(shapes[0].box)
        facts["box"] = answer
    else:
        answer = format_boxes(sorted((s.box for s in shapes if s.shape == facts["shape"]), key=lambda b: (b[1], b[0])))
    instance = TaskInstance(
        task=task,
        frames=_render(settings.size, shapes)[None],
        objects=(),
        problem=PERCEPTION_QUESTIONS[task].format(**facts),
        problem_type=PROBLEM_TYPES[task],
        options=(),
        answer=answer,
        thought=PERCEPTION_THOUGHTS[task].format(**facts),
        facts=facts,
    )
    return instance, {"objects": [shape.as_record() for shape in shapes]}


def write_png(path: Path, frames: np.ndarray) -> Path:
    """Write the one frame of ``[1, H, W, 3]`` uint8 `frames` as a PNG at `path`."""
    Image.fromarray(frames[0]).save(path, format="PNG")
    return path


def _rec(rng: np.random.Generator, count: int) -> tuple[list[Attributes], dict[str, Any]]:
    """The target first, then a shape differing from it in one attribute, then any other shapes."""
    target = _attributes(rng)
    axis = int(rng.integers(0, 3))
    choices = (SIZE_WORDS, tuple(COLORS), SHAPES)[axis]
    near = list(target)
    near[axis] = _pick(rng, [c for c in choices if c != target[axis]])
    others = [_attributes(rng, avoid=target) for _ in range(count - 2)]
    size, color, shape = target
    return [target, tuple(near), *others], {"size": size, "color": color, "shape": shape}


def _detection(rng: np.random.Generator, count: int) -> tuple[list[Attributes], dict[str, Any]]:
    """One to `MAX_DETECTED` shapes of a drawn kind (any size and colour), the rest of other kinds."""
    shape = _pick(rng, SHAPES)
    matches = int(rng.integers(1, min(MAX_DETECTED, count - 1) + 1))
    other_shapes = [s for s in SHAPES if s != shape]
    attributes = [(_pick(rng, SIZE_WORDS), _pick(rng, list(COLORS)), shape) for _ in range(matches)]
    attributes += [
        (_pick(rng, SIZE_WORDS), _pick(rng, list(COLORS)), _pick(rng, other_shapes)) for _ in range(count - matches)
    ]
    return attributes, {"shape": shape, "count": matches}


def _attributes(rng: np.random.Generator, avoid: Attributes | None = None) -> Attributes:
    while True:
        drawn = (_pick(rng, SIZE_WORDS), _pick(rng, list(COLORS)), _pick(rng, SHAPES))
        if drawn != avoid:
            return drawn


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(0, len(items)))]


def _place(rng: np.random.Generator, settings: PerceptionSettings, attributes: list[Attributes]) -> list[PlacedShape]:
    """Each shape in its own random cell, at a random offset that keeps a free pixel on every side."""
    per_row = settings.size // CELL
    cells = rng.choice(settings.cells, size=len(attributes), replace=False)
    placed = []
    for (size, color, shape), cell in zip(attributes, cells):
        row, col = divmod(int(cell), per_row)
        slack = CELL - 2 - SIDES[size]
        x = col * CELL + 1 + int(rng.integers(0, slack + 1))
        y = row * CELL + 1 + int(rng.integers(0, slack + 1))
        placed.append(PlacedShape(size, color, shape, (x, y)))
    return placed


def _render(size: int, shapes: list[PlacedShape]) -> np.ndarray:
    """uint8 ``[size, size, 3]``: the shapes on the background."""
    image = np.empty((size, size, 3), dtype=np.uint8)
    image[:] = BACKGROUND
    for placed in shapes:
        x, y = placed.corner
        side = SIDES[placed.size]
        image[y : y + side, x : x + side][shape_mask(placed.shape, side)] = COLORS[placed.color]
    return image
