"""The opt-in claim tasks: video clips built to expose what an RL method claims to change.

Every answer is a number or a letter whose meaning never changes (fixed option order), because the 644K-parameter
tiny model of the embedded default does not learn to look a colour up in shuffled options within the SFT budget
(it states the right colour in its thought, then answers one letter for everything); numbers and fixed letters it
copies from its own thought.

- ``compare``: static shapes of two kinds (plus ``difficulty.distractors`` of the third kind); "Are there more
  circles than squares?" with options ``A. yes`` / ``B. no``. The two counts never tie, so the answer follows from
  them, and the thought states both ("I count 3 circles and 2 squares."): a reasoning–answer consistency check
  (`data_pipelines.consistency`) can hold a completion's answer against its own counts. The record adds ``counts``.
- ``difficulty_mix``: a seeded mix of easy items (1 to `EASY_MAX_COUNT` shapes of one kind and nothing else) and
  hard items (a count of one kind among at least `HARD_DISTRACTORS` shapes of other kinds, up to MAX_COUNT of it),
  both "How many squares are in the video?" answered with a number. The record adds ``difficulty`` (``"easy"`` or
  ``"hard"``).
- ``direction_fixed``: the default ``direction`` question with its options always ``A. left, B. right, C. up,
  D. down``; it needs the frames in order (shuffled, the motion is lost), for T-GRPO's temporal contrast.
- ``colors_fixed``: "Which colors appear in the video?" over `FIXED_COLORS` only, options always in that order;
  2 or 3 of them appear, so the answer is a set of letters (``"A,C"``, multi-answer), for TW-GRPO's soft reward.

All use the layout and renderer of `scenes`, so every object sits in its own grid cell and never overlaps another.
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
    _direction_task,
    _instance,
    _labelled,
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
    DIRECTIONS,
    MAX_COUNT,
    QUESTIONS,
    SHAPES,
    YES_NO,
)

HARD_SHARE = 0.5
"""Chance that a ``difficulty_mix`` item is hard."""
HARD_DISTRACTORS = 2
"""Fewest distractors in a hard ``difficulty_mix`` item (more when ``difficulty.distractors`` asks for more)."""
EASY_MAX_COUNT = 3
"""Most shapes in an easy ``difficulty_mix`` item (all of the asked kind, nothing else)."""
FIXED_COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow")
"""The colours of a ``colors_fixed`` clip, and its options in this order."""


def make_claim_instance(
    task: str, rng: np.random.Generator, difficulty: Difficulty = Difficulty()
) -> tuple[TaskInstance, dict[str, Any]]:
    """Draw one `task` clip (one of CLAIM_TASKS): its instance and the fields its record adds to the Video-R1 ones."""
    if task == "compare":
        return _compare(rng, difficulty)
    if task == "difficulty_mix":
        return _difficulty_mix(rng, difficulty)
    if task == "direction_fixed":
        return _direction_fixed(rng, difficulty), {}
    if task == "colors_fixed":
        return _colors_fixed(rng, difficulty), {}
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
        return _easy(rng, d), {"difficulty": "easy"}
    hard = dataclasses.replace(d, distractors=max(d.distractors, HARD_DISTRACTORS))
    return dataclasses.replace(_count_task(rng, hard), task="difficulty_mix"), {"difficulty": "hard"}


def _easy(rng: np.random.Generator, d: Difficulty) -> TaskInstance:
    """1 to `EASY_MAX_COUNT` static shapes of one kind (random colours, random cells) and nothing else; how many."""
    shape = _pick(rng, SHAPES)
    count = int(rng.integers(1, EASY_MAX_COUNT + 1))
    colors = list(COLORS)
    objects = [_static(d, shape, _pick(rng, colors), corner) for corner in _static_positions(rng, d, count)]
    instance = _instance("count", d, objects, QUESTIONS["count"].format(shape=shape), (), str(count), {"shape": shape, "count": count})
    return dataclasses.replace(instance, task="difficulty_mix")


def _direction_fixed(rng: np.random.Generator, d: Difficulty) -> TaskInstance:
    instance = _direction_task(rng, d)
    order = list(DIRECTIONS)
    return dataclasses.replace(
        instance, task="direction_fixed", options=_labelled(order), answer=OPTION_LETTERS[order.index(instance.facts["direction"])]
    )


def _colors_fixed(rng: np.random.Generator, d: Difficulty) -> TaskInstance:
    """2 or 3 of `FIXED_COLORS` on static shapes (distractors reuse them); which appear, options in fixed order."""
    present = sorted(rng.choice(len(FIXED_COLORS), size=int(rng.integers(2, 4)), replace=False).tolist())
    names = [FIXED_COLORS[i] for i in present]
    fills = names + [_pick(rng, names) for _ in range(d.distractors)]
    objects = [_static(d, _pick(rng, SHAPES), c, corner) for c, corner in zip(fills, _static_positions(rng, d, len(fills)))]
    answer = ",".join(OPTION_LETTERS[i] for i in present)
    instance = _instance("colors_present", d, objects, QUESTIONS["colors_present"], FIXED_COLORS, answer, {"colors": tuple(names)})
    return dataclasses.replace(instance, task="colors_fixed")
