"""The opt-in claim tasks: video clips built to expose what an RL method claims to change.

- ``compare``: static shapes of two kinds (plus ``difficulty.distractors`` of the third kind); "Are there more
  circles than squares?" with options ``A. yes`` / ``B. no``. The two counts never tie, so the answer follows from
  them, and the thought states both ("I count 3 circles and 2 squares."): a reasoning–answer consistency check
  (`data_pipelines.consistency`) can hold a completion's answer against its own counts. The record adds ``counts``.
- ``difficulty_mix``: a seeded mix of easy items (2-4 static shapes of one colour: "What color are the shapes?") and hard items
  (a count of one kind among at least `HARD_DISTRACTORS` other shapes, or which shape appears first with as many
  late distractors). The record adds ``difficulty`` (``"easy"`` or ``"hard"``) and ``question_kind``.

Both use the layout and renderer of `scenes`, so every object sits in its own grid cell and never overlaps another.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from data_pipelines.synthetic.scenes import (
    OPTION_LETTERS,
    Difficulty,
    TaskInstance,
    _count_task,
    _labelled,
    _options,
    _order_task,
    _pick,
    _static,
    _static_positions,
    render,
)
from data_pipelines.synthetic.vocabulary import (
    CLAIM_QUESTIONS,
    CLAIM_TASKS,
    CLAIM_THOUGHTS,
    COLORS,
    MAX_COUNT,
    SHAPES,
    YES_NO,
)

HARD_SHARE = 0.5
"""Chance that a ``difficulty_mix`` item is hard."""
HARD_DISTRACTORS = 2
"""Fewest distractors in a hard ``difficulty_mix`` item (more when ``difficulty.distractors`` asks for more)."""
EASY_SHAPES: tuple[int, int] = (2, 4)
"""Fewest and most shapes in an easy ``difficulty_mix`` item (all of one colour)."""
HARD_KINDS: tuple[str, ...] = ("count", "order")
"""Question kinds of hard ``difficulty_mix`` items."""


def make_claim_instance(
    task: str, rng: np.random.Generator, difficulty: Difficulty = Difficulty()
) -> tuple[TaskInstance, dict[str, Any]]:
    """Draw one `task` clip (one of CLAIM_TASKS): its instance and the fields its record adds to the Video-R1 ones."""
    if task == "compare":
        return _compare(rng, difficulty)
    if task == "difficulty_mix":
        return _difficulty_mix(rng, difficulty)
    raise ValueError(f"unknown claim task {task!r}; choose from {CLAIM_TASKS}")


def compare_cap(difficulty: Difficulty) -> int:
    """Most shapes of either compared kind that a clip of `difficulty` holds (its grid less the distractors).

    At least 2, since `Difficulty` leaves room for MAX_COUNT shapes besides the distractors."""
    return min(MAX_COUNT, (difficulty.grid**2 - difficulty.distractors) // 2)


def _compare(rng: np.random.Generator, d: Difficulty) -> tuple[TaskInstance, dict[str, Any]]:
    cap = compare_cap(d)
    first, second, third = (SHAPES[int(i)] for i in rng.permutation(len(SHAPES)))
    first_count, second_count = (int(c) + 1 for c in rng.choice(cap, size=2, replace=False))
    kinds = [first] * first_count + [second] * second_count + [third] * d.distractors
    corners = _static_positions(rng, d, len(kinds))
    colors = list(COLORS)
    objects = [_static(d, shape, _pick(rng, colors), corner) for shape, corner in zip(kinds, corners)]
    facts = {"first": first, "second": second, "first_count": first_count, "second_count": second_count}
    instance = TaskInstance(
        task="compare",
        frames=render(objects, d),
        objects=tuple(objects),
        problem=CLAIM_QUESTIONS["compare"].format(**facts),
        problem_type="multiple choice",
        options=_labelled(YES_NO),
        answer=OPTION_LETTERS[0 if first_count > second_count else 1],
        thought=CLAIM_THOUGHTS["compare"].format(**facts),
        facts=facts,
    )
    return instance, {"counts": {first: first_count, second: second_count}}


def _difficulty_mix(rng: np.random.Generator, d: Difficulty) -> tuple[TaskInstance, dict[str, Any]]:
    if rng.random() >= HARD_SHARE:
        return _easy(rng, d), {"difficulty": "easy", "question_kind": "color"}
    kind = _pick(rng, HARD_KINDS)
    hard = dataclasses.replace(d, distractors=max(d.distractors, HARD_DISTRACTORS))
    instance = _count_task(rng, hard) if kind == "count" else _order_task(rng, hard)
    return dataclasses.replace(instance, task="difficulty_mix"), {"difficulty": "hard", "question_kind": kind}


def _easy(rng: np.random.Generator, d: Difficulty) -> TaskInstance:
    """`EASY_SHAPES` static shapes of random kinds, all of one random colour, in random cells; which colour they are.

    Any pixel of any shape gives the answer, yet the scenes are many (cells, kinds and count vary), so a held-out
    split finds easy scenes that no training clip shows."""
    colors = list(COLORS)
    color = _pick(rng, colors)
    n_shapes = int(rng.integers(EASY_SHAPES[0], EASY_SHAPES[1] + 1))
    corners = _static_positions(rng, d, n_shapes)
    objects = [_static(d, _pick(rng, SHAPES), color, corner) for corner in corners]
    texts = _options(rng, [color], (), [c for c in colors if c != color])
    return TaskInstance(
        task="difficulty_mix",
        frames=render(objects, d),
        objects=tuple(objects),
        problem=CLAIM_QUESTIONS["easy"],
        problem_type="multiple choice",
        options=_labelled(texts),
        answer=OPTION_LETTERS[texts.index(color)],
        thought=CLAIM_THOUGHTS["easy"].format(color=color),
        facts={"color": color},
    )
