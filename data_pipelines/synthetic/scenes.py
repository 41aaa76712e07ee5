"""Procedural scenes of coloured shapes on a dark background, and the task instances built on them.

Layout: the frame (less a 1-pixel margin) is cut into an ``n × n`` grid of cells at least
``object_size + GAP`` wide; static objects sit one per cell, so two objects are always at least
``GAP - 1`` pixels apart. A moving object travels along one grid row (horizontal motion) or column
(vertical motion), its *lane*, which no static object uses; so no two objects ever overlap and every
object stays inside the frame for all frames. All randomness comes from the caller's
`numpy.random.Generator`, so an instance is a pure function of the generator state and `Difficulty`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from data_pipelines.synthetic.vocabulary import (
    BACKGROUND,
    COLORS,
    DIRECTIONS,
    MAX_COUNT,
    QUESTIONS,
    SHAPES,
    TASKS,
    THOUGHTS,
)

MARGIN = 1
"""Pixels kept free at every frame edge."""
GAP = 4
"""Minimum cell pitch beyond the object size; objects in neighbouring cells are >= GAP - 1 pixels apart."""
OPTION_LETTERS = "ABCD"
"""Every multiple-choice question has exactly four options."""

TASK_PROBLEM_TYPES: dict[str, str] = {
    "color": "multiple choice",
    "direction": "multiple choice",
    "count": "numerical",
    "order": "multiple choice",
    "colors_present": "multi-answer",
}


@dataclass(frozen=True)
class Difficulty:
    """Knobs of the generated clips; validated on construction.

    `size` and `object_size` are in pixels (even). `speed` scales the per-frame motion of a moving
    object; at 1.0 it moves a third of its size per frame, or less when that path would not fit
    in the frame. `distractors` is the number of extra static objects in a scene.
    """

    frames: int = 4
    size: int = 56
    fps: float = 4.0
    distractors: int = 0
    speed: float = 1.0
    object_size: int = 14

    def __post_init__(self) -> None:
        if self.frames < 2:
            raise ValueError(f"Difficulty.frames must be at least 2 (motion and order need them), got {self.frames}")
        if self.fps <= 0:
            raise ValueError(f"Difficulty.fps must be positive, got {self.fps}")
        if self.object_size < 6 or self.object_size % 2:
            raise ValueError(f"Difficulty.object_size must be an even number >= 6, got {self.object_size}")
        if self.size % 2:
            raise ValueError(f"Difficulty.size must be even (yuv420p video), got {self.size}")
        if self.grid < 2:
            raise ValueError(
                f"Difficulty.size={self.size} fits fewer than 2x2 objects of object_size={self.object_size}; "
                f"use size >= {2 * (self.object_size + GAP) + 2 * MARGIN} or a smaller object_size"
            )
        if self.distractors < 0:
            raise ValueError(f"Difficulty.distractors must be >= 0, got {self.distractors}")
        room = self.grid * (self.grid - 1)
        if self.distractors > room or MAX_COUNT + self.distractors > self.grid**2:
            most = min(room, self.grid**2 - MAX_COUNT)
            raise ValueError(
                f"Difficulty.distractors={self.distractors} does not fit a {self.grid}x{self.grid} grid "
                f"(size={self.size}, object_size={self.object_size}); use at most {max(most, 0)} or a larger size"
            )
        if self.speed <= 0:
            raise ValueError(f"Difficulty.speed must be positive, got {self.speed}")
        path = self.step * (self.frames - 1)
        if path > self.travel_room + 1e-9:
            raise ValueError(
                f"Difficulty.speed={self.speed} moves an object {path:.1f} px over {self.frames} frames but the frame "
                f"leaves {self.travel_room} px; lower speed or frames, or raise size"
            )
        if path < 2:
            raise ValueError(
                f"Difficulty.speed={self.speed} moves an object only {path:.1f} px over {self.frames} frames; "
                "raise speed so that the motion is visible"
            )

    @property
    def grid(self) -> int:
        """Number of static-object cells per side."""
        return (self.size - 2 * MARGIN) // (self.object_size + GAP)

    @property
    def travel_room(self) -> int:
        """Pixels a moving object can travel along its lane."""
        return self.size - 2 * MARGIN - self.object_size

    @property
    def step(self) -> float:
        """Pixels a moving object travels per frame."""
        return self.speed * min(self.object_size / 3, self.travel_room / (self.frames - 1))


@dataclass(frozen=True)
class SceneObject:
    """One shape: top-left corner ``(x, y)`` per frame, visible from frame `appear` on."""

    shape: str
    color: str
    positions: tuple[tuple[int, int], ...]
    appear: int = 0

    @property
    def moving(self) -> bool:
        """Whether the object changes position during the clip."""
        return self.positions[0] != self.positions[-1]


@dataclass(frozen=True)
class TaskInstance:
    """A rendered clip with its question and ground truth.

    `facts` holds the task's ground truth under the names the THOUGHTS template uses
    (``colors`` is a tuple of colour names in option order).
    """

    task: str
    frames: np.ndarray
    objects: tuple[SceneObject, ...]
    problem: str
    problem_type: str
    options: tuple[str, ...]
    answer: str
    thought: str
    facts: Mapping[str, Any] = field(default_factory=dict)


@lru_cache(maxsize=None)
def shape_mask(shape: str, size: int) -> np.ndarray:
    """Boolean ``[size, size]`` mask of a filled square, circle or upward triangle."""
    ys, xs = np.mgrid[0:size, 0:size]
    centre = (size - 1) / 2
    if shape == "square":
        mask = np.ones((size, size), dtype=bool)
    elif shape == "circle":
        mask = (xs - centre) ** 2 + (ys - centre) ** 2 <= (size / 2) ** 2
    elif shape == "triangle":
        mask = np.abs(xs - centre) <= (ys + 1) / 2
    else:
        raise ValueError(f"unknown shape {shape!r}; choose one of {SHAPES}")
    mask.setflags(write=False)
    return mask


def render(objects: Sequence[SceneObject], difficulty: Difficulty) -> np.ndarray:
    """Draw `objects` on the background: uint8 ``[frames, size, size, 3]``."""
    d = difficulty
    frames = np.empty((d.frames, d.size, d.size, 3), dtype=np.uint8)
    frames[:] = BACKGROUND
    s = d.object_size
    for obj in objects:
        mask = shape_mask(obj.shape, s)
        color = np.array(COLORS[obj.color], dtype=np.uint8)
        for t in range(obj.appear, d.frames):
            x, y = obj.positions[t]
            frames[t, y : y + s, x : x + s][mask] = color
    return frames


def make_instance(task: str, rng: np.random.Generator, difficulty: Difficulty = Difficulty()) -> TaskInstance:
    """Render one clip of `task` (one of vocabulary.TASKS) and build its question and answer."""
    if task not in _BUILDERS:
        raise ValueError(f"unknown synthetic task {task!r}; choose from {TASKS}")
    return _BUILDERS[task](rng, difficulty)


# --- layout -------------------------------------------------------------------------------------


def _cell_corner(rng: np.random.Generator, d: Difficulty, index: int) -> int:
    """Top-left coordinate of a shape in grid cell `index` along one axis, jittered inside the cell."""
    pitch = (d.size - 2 * MARGIN) / d.grid
    slack = math.floor(pitch - d.object_size - GAP)
    return MARGIN + math.floor(index * pitch) + int(rng.integers(0, slack + 1))


def _static_positions(
    rng: np.random.Generator, d: Difficulty, count: int, *, lane: tuple[str, int] | None = None
) -> list[tuple[int, int]]:
    """`count` top-left corners in distinct random cells, avoiding a mover's lane ``("row"|"col", index)``."""
    cells = [
        (row, col)
        for row in range(d.grid)
        for col in range(d.grid)
        if lane is None or (row if lane[0] == "row" else col) != lane[1]
    ]
    picks = rng.choice(len(cells), size=count, replace=False)
    positions = []
    for pick in picks:
        row, col = cells[int(pick)]
        positions.append((_cell_corner(rng, d, col), _cell_corner(rng, d, row)))
    return positions


def _moving_object(
    rng: np.random.Generator, d: Difficulty, shape: str, color: str, direction: str
) -> tuple[SceneObject, tuple[str, int]]:
    """A shape travelling `direction` along a random lane; returns it and the lane it occupies."""
    dx, dy = DIRECTIONS[direction]
    lane_index = int(rng.integers(0, d.grid))
    across = _cell_corner(rng, d, lane_index)
    path = d.step * (d.frames - 1)
    sign = dx + dy
    start = MARGIN + rng.uniform(0, d.travel_room - path)
    if sign < 0:
        start += path
    along = [round(start + sign * d.step * t) for t in range(d.frames)]
    if dx:
        positions = tuple((a, across) for a in along)
        lane = ("row", lane_index)
    else:
        positions = tuple((across, a) for a in along)
        lane = ("col", lane_index)
    return SceneObject(shape, color, positions), lane


def _static(d: Difficulty, shape: str, color: str, corner: tuple[int, int], appear: int = 0) -> SceneObject:
    return SceneObject(shape, color, (corner,) * d.frames, appear)


def _pick(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(0, len(items)))]


def _shuffled(rng: np.random.Generator, items: Sequence[Any]) -> list[Any]:
    return [items[int(i)] for i in rng.permutation(len(items))]


def _options(rng: np.random.Generator, correct: Sequence[str], hard: Sequence[str], pool: Sequence[str]) -> list[str]:
    """Four distinct option texts: all of `correct`, then `hard` negatives, then random ones from `pool`; shuffled."""
    chosen = list(dict.fromkeys(correct))
    for text in [*_shuffled(rng, list(dict.fromkeys(hard))), *_shuffled(rng, pool)]:
        if len(chosen) == len(OPTION_LETTERS):
            break
        if text not in chosen:
            chosen.append(text)
    return _shuffled(rng, chosen)


def _labelled(texts: Sequence[str]) -> tuple[str, ...]:
    return tuple(f"{letter}. {text}" for letter, text in zip(OPTION_LETTERS, texts))


def _instance(
    task: str, d: Difficulty, objects: list[SceneObject], question: str, texts: Sequence[str],
    answer: str, facts: dict[str, Any],
) -> TaskInstance:
    template_facts = dict(facts)
    if "colors" in facts:
        template_facts["colors"] = ", ".join(facts["colors"])
    return TaskInstance(
        task=task,
        frames=render(objects, d),
        objects=tuple(objects),
        problem=question,
        problem_type=TASK_PROBLEM_TYPES[task],
        options=_labelled(texts),
        answer=answer,
        thought=THOUGHTS[task].format(**template_facts),
        facts=facts,
    )


# --- tasks --------------------------------------------------------------------------------------


def _color_task(rng: np.random.Generator, d: Difficulty) -> TaskInstance:
    """One moving shape among static distractors of other colours; which colour is the mover."""
    colors = list(COLORS)
    shape, color = _pick(rng, SHAPES), _pick(rng, colors)
    mover, lane = _moving_object(rng, d, shape, color, _pick(rng, list(DIRECTIONS)))
    others = [c for c in colors if c != color]
    objects = [mover] + [
        _static(d, _pick(rng, SHAPES), _pick(rng, others), corner)
        for corner in _static_positions(rng, d, d.distractors, lane=lane)
    ]
    texts = _options(rng, [color], [o.color for o in objects[1:]], others)
    answer = OPTION_LETTERS[texts.index(color)]
    return _instance("color", d, objects, QUESTIONS["color"].format(shape=shape), texts, answer,
                     {"shape": shape, "color": color})


def _direction_task(rng: np.random.Generator, d: Difficulty) -> TaskInstance:
    """One moving shape (named by colour and shape) among static distractors; which way it moves."""
    combos = [(c, s) for c in COLORS for s in SHAPES]
    color, shape = combos[int(rng.integers(0, len(combos)))]
    direction = _pick(rng, list(DIRECTIONS))
    mover, lane = _moving_object(rng, d, shape, color, direction)
    others = [combo for combo in combos if combo != (color, shape)]
    objects = [mover]
    for corner in _static_positions(rng, d, d.distractors, lane=lane):
        other_color, other_shape = others[int(rng.integers(0, len(others)))]
        objects.append(_static(d, other_shape, other_color, corner))
    texts = _shuffled(rng, list(DIRECTIONS))
    answer = OPTION_LETTERS[texts.index(direction)]
    return _instance("direction", d, objects, QUESTIONS["direction"].format(color=color, shape=shape), texts,
                     answer, {"shape": shape, "color": color, "direction": direction})


def _count_task(rng: np.random.Generator, d: Difficulty) -> TaskInstance:
    """k static shapes of one kind plus distractors of other shapes; how many of that shape."""
    colors = list(COLORS)
    shape = _pick(rng, SHAPES)
    count = int(rng.integers(1, MAX_COUNT + 1))
    other_shapes = [s for s in SHAPES if s != shape]
    corners = _static_positions(rng, d, count + d.distractors)
    objects = [_static(d, shape, _pick(rng, colors), corner) for corner in corners[:count]]
    objects += [_static(d, _pick(rng, other_shapes), _pick(rng, colors), corner) for corner in corners[count:]]
    return _instance("count", d, objects, QUESTIONS["count"].format(shape=shape), (), str(count),
                     {"shape": shape, "count": count})


def _order_task(rng: np.random.Generator, d: Difficulty) -> TaskInstance:
    """Two or three shapes appear at distinct frames (distractors after the first); which appears first."""
    combos = [(c, s) for c in COLORS for s in SHAPES]
    n_named = int(rng.integers(2, min(3, d.frames) + 1))
    chosen = [combos[int(p)] for p in rng.choice(len(combos), size=n_named, replace=False)]
    later = [combo for combo in combos if combo != chosen[0]]
    chosen += [later[int(rng.integers(0, len(later)))] for _ in range(d.distractors)]
    appear = sorted(int(a) for a in rng.choice(d.frames, size=n_named, replace=False))
    appear += [int(rng.integers(appear[0] + 1, d.frames)) for _ in range(d.distractors)]
    corners = _static_positions(rng, d, len(chosen))
    objects = [_static(d, s, c, corner, a) for (c, s), corner, a in zip(chosen, corners, appear)]
    names = [f"{c} {s}" for c, s in chosen]
    texts = _options(rng, names[:1], names[1:], [f"{c} {s}" for c, s in combos])
    color, shape = chosen[0]
    return _instance("order", d, objects, QUESTIONS["order"], texts, OPTION_LETTERS[texts.index(names[0])],
                     {"shape": shape, "color": color})


def _colors_present_task(rng: np.random.Generator, d: Difficulty) -> TaskInstance:
    """Two or three colours of static shapes (distractors reuse them); which colours appear."""
    colors = list(COLORS)
    n_colors = int(rng.integers(2, 4))
    present = [colors[int(i)] for i in rng.choice(len(colors), size=n_colors, replace=False)]
    fills = present + [_pick(rng, present) for _ in range(d.distractors)]
    corners = _static_positions(rng, d, len(fills))
    objects = [_static(d, _pick(rng, SHAPES), c, corner) for c, corner in zip(fills, corners)]
    texts = _options(rng, present, (), [c for c in colors if c not in present])
    letters = [OPTION_LETTERS[i] for i, text in enumerate(texts) if text in present]
    in_order = tuple(text for text in texts if text in present)
    return _instance("colors_present", d, objects, QUESTIONS["colors_present"], texts, ",".join(letters),
                     {"colors": in_order})


_BUILDERS = {
    "color": _color_task,
    "direction": _direction_task,
    "count": _count_task,
    "order": _order_task,
    "colors_present": _colors_present_task,
}
