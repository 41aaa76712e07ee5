"""The ``needle`` task: a long clip in which one shape shows for a few frames that a uniform preview never samples.

A clip has static distractor shapes on every frame; the *event* is one more shape, of a colour and a
shape that no distractor has, drawn on 2 to 4 consecutive frames. Those frames avoid both integer
neighbours of every position of a ``preview_frames``-frame uniform sample (qwen-vl-utils ``nframes``:
the rounded ``linspace(0, frames - 1, preview_frames)``), so the preview misses the event under either
rounding and a model that sees only the preview has to search. Frame spans are half-open:
``end_frame`` is one past the last event frame, and ``end_time = end_frame / fps``.

Each clip asks one of three questions (`NEEDLE_KINDS`) and carries a two-turn ``seek_video_frames``
trace (a search over the whole clip, then the answer) for supervised cold start.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from data_pipelines.search_prompt import MAX_FRAMES_PER_CALL, TOOL_NAME
from data_pipelines.synthetic.scenes import (
    OPTION_LETTERS,
    Difficulty,
    SceneObject,
    TaskInstance,
    _labelled,
    _options,
    _static_positions,
    shape_mask,
)
from data_pipelines.synthetic.vocabulary import (
    BACKGROUND,
    COLORS,
    NEEDLE_QUESTIONS,
    NEEDLE_SEARCH_THOUGHT,
    NEEDLE_TASK,
    NEEDLE_THOUGHTS,
    SHAPES,
)

NEEDLE_KINDS: tuple[str, ...] = ("color", "second", "grounding")
"""Question kinds, assigned round-robin over a split's needle clips."""
KIND_PROBLEM_TYPES: dict[str, str] = {"color": "multiple choice", "second": "numerical", "grounding": "grounding"}
EVENT_FRAMES: tuple[int, int] = (2, 4)
"""Fewest and most consecutive frames the event shows on."""
FRAME_RANGE: tuple[int, int] = (64, 256)
"""Allowed clip lengths in frames."""
TIME_DECIMALS = 3


def preview_indices(total_frames: int, preview_frames: int) -> list[int]:
    """Frames a uniform ``preview_frames``-frame sample takes: ``round(linspace(0, total - 1, n))``, half to even."""
    if not 1 <= preview_frames <= total_frames:
        raise ValueError(f"preview_frames must lie in [1, {total_frames}], got {preview_frames}")
    return [int(i) for i in np.rint(np.linspace(0, total_frames - 1, preview_frames))]


def blocked_frames(total_frames: int, preview_frames: int) -> frozenset[int]:
    """Frames the event must not touch: floor and ceil of every preview position (any rounding picks one of them)."""
    positions = np.linspace(0, total_frames - 1, preview_frames)
    return frozenset(int(f) for p in positions for f in (math.floor(p), math.ceil(p)))


@dataclass(frozen=True)
class NeedleSettings:
    """Clip length and rate, the preview the event hides from, and the number of distractors; validated here.

    `preview_frames` is the ``nframes`` of the uniform preview the construction guarantees against; it must be
    even because qwen-vl-utils rounds ``nframes`` to a multiple of 2.
    """

    frames: int = 96
    fps: float = 8.0
    preview_frames: int = 8
    distractors: int = 3

    def __post_init__(self) -> None:
        low, high = FRAME_RANGE
        if not low <= self.frames <= high:
            raise ValueError(f"NeedleSettings.frames must lie in [{low}, {high}], got {self.frames}")
        if not self.fps > 0:
            raise ValueError(f"NeedleSettings.fps must be positive, got {self.fps}")
        if self.preview_frames < 2 or self.preview_frames % 2 or self.preview_frames > self.frames:
            raise ValueError(
                f"NeedleSettings.preview_frames must be an even number in [2, {self.frames}] (qwen-vl-utils rounds "
                f"nframes to a multiple of 2), got {self.preview_frames}"
            )
        if self.distractors < 1:
            raise ValueError(f"NeedleSettings.distractors must be at least 1, got {self.distractors}")
        if not self.event_starts(EVENT_FRAMES[1]):
            raise ValueError(
                f"a {self.preview_frames}-frame preview of {self.frames} frames leaves no {EVENT_FRAMES[1]} "
                "consecutive unsampled frames for the event; lower preview_frames or raise frames"
            )

    @property
    def duration(self) -> float:
        """Clip length in seconds."""
        return self.frames / self.fps

    def event_starts(self, length: int) -> list[int]:
        """First frames from which a `length`-frame event touches no blocked frame."""
        blocked = blocked_frames(self.frames, self.preview_frames)
        return [s for s in range(self.frames - length + 1) if blocked.isdisjoint(range(s, s + length))]

    def check_fits(self, difficulty: Difficulty) -> None:
        """Raise unless the distractors and the event fit the frame's grid of object cells."""
        cells = difficulty.grid**2
        if self.distractors + 1 > cells:
            raise ValueError(
                f"NeedleSettings.distractors={self.distractors} plus the event need {self.distractors + 1} cells but a "
                f"frame of size={difficulty.size}, object_size={difficulty.object_size} has {cells}; use at most "
                f"{cells - 1} distractors or a larger size"
            )

    def info(self) -> dict[str, Any]:
        """The settings plus the preview indices, for ``dataset_info.json``."""
        return {**dataclasses.asdict(self), "preview_indices": preview_indices(self.frames, self.preview_frames)}


@dataclass(frozen=True)
class NeedleEvent:
    """The briefly shown shape: top-left corner ``(x, y)``, visible on frames ``[start_frame, end_frame)``."""

    color: str
    shape: str
    corner: tuple[int, int]
    start_frame: int
    end_frame: int
    fps: float

    @property
    def start_time(self) -> float:
        return round(self.start_frame / self.fps, TIME_DECIMALS)

    @property
    def end_time(self) -> float:
        return round(self.end_frame / self.fps, TIME_DECIMALS)

    def as_record(self) -> dict[str, Any]:
        """The record's ``event`` field (its colour under the key ``colour``)."""
        return {
            "start_time": self.start_time,
            "end_time": self.end_time,
            "start_frame": self.start_frame,
            "end_frame": self.end_frame,
            "colour": self.color,
            "shape": self.shape,
        }


@dataclass(frozen=True)
class NeedleClip:
    """A rendered needle clip: its question, event, question kind and search trace.

    `instance` has task ``needle``; its objects are the distractors (the event is `event`).
    """

    instance: TaskInstance
    event: NeedleEvent
    kind: str
    duration: float
    search_trace: tuple[str, str]

    def record_fields(self) -> dict[str, Any]:
        """The fields a needle record adds to the Video-R1 ones."""
        return {
            "needle_kind": self.kind,
            "duration": self.duration,
            "event": self.event.as_record(),
            "search_trace": list(self.search_trace),
        }


def make_needle_clip(
    rng: np.random.Generator, kind: str, settings: NeedleSettings, difficulty: Difficulty = Difficulty()
) -> NeedleClip:
    """Draw and render one needle clip asking a `kind` question; frame size and object size come from `difficulty`."""
    if kind not in NEEDLE_KINDS:
        raise ValueError(f"unknown needle question kind {kind!r}; choose from {NEEDLE_KINDS}")
    settings.check_fits(difficulty)
    colors, shapes = list(COLORS), list(SHAPES)
    color = colors[int(rng.integers(0, len(colors)))]
    shape = shapes[int(rng.integers(0, len(shapes)))]
    other_colors = [c for c in colors if c != color]
    other_shapes = [s for s in shapes if s != shape]
    corners = _static_positions(rng, difficulty, settings.distractors + 1)
    distractors = [
        SceneObject(
            other_shapes[int(rng.integers(0, len(other_shapes)))],
            other_colors[int(rng.integers(0, len(other_colors)))],
            (corner,) * settings.frames,
        )
        for corner in corners[1:]
    ]
    length = int(rng.integers(EVENT_FRAMES[0], EVENT_FRAMES[1] + 1))
    starts = settings.event_starts(length)
    start = starts[int(rng.integers(0, len(starts)))]
    event = NeedleEvent(color, shape, corners[0], start, start + length, settings.fps)

    question, texts, answer, thought = _question(rng, kind, event, [o.color for o in distractors])
    trace = _search_trace(kind, event, settings.duration, thought, answer)
    instance = TaskInstance(
        task=NEEDLE_TASK,
        frames=_render(settings.frames, difficulty, distractors, event),
        objects=tuple(distractors),
        problem=question,
        problem_type=KIND_PROBLEM_TYPES[kind],
        options=_labelled(texts),
        answer=answer,
        thought=thought,
        facts=event.as_record(),
    )
    return NeedleClip(instance, event, kind, settings.duration, trace)


def _render(frames: int, difficulty: Difficulty, distractors: list[SceneObject], event: NeedleEvent) -> np.ndarray:
    """uint8 ``[frames, size, size, 3]``: the (static) distractors on every frame, the event on its frames only."""
    s = difficulty.object_size
    still = np.empty((difficulty.size, difficulty.size, 3), dtype=np.uint8)
    still[:] = BACKGROUND
    for obj in distractors:
        x, y = obj.positions[0]
        still[y : y + s, x : x + s][shape_mask(obj.shape, s)] = COLORS[obj.color]
    video = np.repeat(still[None], frames, axis=0)
    x, y = event.corner
    shown = video[event.start_frame : event.end_frame, y : y + s, x : x + s]
    shown[:, shape_mask(event.shape, s)] = COLORS[event.color]
    return video


def _question(
    rng: np.random.Generator, kind: str, event: NeedleEvent, distractor_colors: list[str]
) -> tuple[str, list[str], str, str]:
    """``(question, option texts, answer, thought)`` of a `kind` question about `event`."""
    facts = {
        "color": event.color,
        "shape": event.shape,
        "start": f"{event.start_time:g}",
        "end": f"{event.end_time:g}",
        "second": math.floor(event.start_frame / event.fps),
    }
    question = NEEDLE_QUESTIONS[kind].format(**facts)
    thought = NEEDLE_THOUGHTS[kind].format(**facts)
    if kind == "color":
        texts = _options(rng, [event.color], distractor_colors, [c for c in COLORS if c != event.color])
        return question, texts, OPTION_LETTERS[texts.index(event.color)], thought
    if kind == "second":
        return question, [], str(facts["second"]), thought
    return question, [], json.dumps({"start_time": event.start_time, "end_time": event.end_time}), thought


def _search_trace(kind: str, event: NeedleEvent, duration: float, thought: str, answer: str) -> tuple[str, str]:
    """Two assistant turns: a search over the whole clip, then the answer.

    The query names what the question gives: the shape alone for the colour question (its colour is the
    answer), colour and shape otherwise. The window is the whole clip: the preview never shows the event, so
    a policy cannot know where it is before searching; the tool's relevance ranking finds it.
    """
    target = event.shape if kind == "color" else f"{event.color} {event.shape}"
    call = {
        "name": TOOL_NAME,
        "arguments": {"query": target, "start_time": 0, "end_time": _seconds(duration), "num_frames": MAX_FRAMES_PER_CALL},
    }
    search = NEEDLE_SEARCH_THOUGHT.format(target=target)
    return (
        f"<think>{search}</think><tool_call>\n{json.dumps(call)}\n</tool_call>",
        f"<think>{thought}</think><answer>{answer}</answer>",
    )


def _seconds(value: float) -> int | float:
    """A whole number of seconds as an int (``8``), else the float."""
    return int(value) if float(value).is_integer() else value
