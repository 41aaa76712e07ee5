"""Every word the synthetic generator can write: objects, questions, thoughts.

The tiny model's tokenizer is trained on `corpus_lines()`, so the generator must take all of its
text from here.
"""

from __future__ import annotations

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "green": (40, 200, 60),
    "blue": (40, 80, 235),
    "yellow": (240, 220, 40),
    "purple": (150, 60, 200),
    "orange": (245, 140, 30),
}
SHAPES: tuple[str, ...] = ("square", "circle", "triangle")
DIRECTIONS: dict[str, tuple[int, int]] = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
BACKGROUND: tuple[int, int, int] = (20, 20, 20)

TASKS: tuple[str, ...] = ("color", "direction", "count", "order", "colors_present")
"""Task names: colour of the moving object (MC), its direction (MC), number of objects
(numerical), which object appears first (MC), which colours appear (multi-answer MC)."""

QUESTIONS: dict[str, str] = {
    "color": "What color is the moving {shape}?",
    "direction": "In which direction does the {color} {shape} move?",
    "count": "How many {shape}s are in the video?",
    "order": "Which object appears first in the video?",
    "colors_present": "Which colors appear in the video?",
}

THOUGHTS: dict[str, str] = {
    "color": "The moving {shape} is {color}.",
    "direction": "The {color} {shape} moves {direction}.",
    "count": "I count {count} {shape}s.",
    "order": "The {color} {shape} appears first.",
    "colors_present": "I see {colors}.",
}

MAX_COUNT = 5


def corpus_lines() -> list[str]:
    """All question, option and thought strings the generator can produce, one per line."""
    lines: list[str] = []
    for shape in SHAPES:
        lines.append(QUESTIONS["color"].format(shape=shape))
        lines.append(QUESTIONS["count"].format(shape=shape))
        for color in COLORS:
            lines.append(THOUGHTS["color"].format(shape=shape, color=color))
            lines.append(THOUGHTS["order"].format(shape=shape, color=color))
            lines.append(QUESTIONS["direction"].format(shape=shape, color=color))
            for direction in DIRECTIONS:
                lines.append(THOUGHTS["direction"].format(shape=shape, color=color, direction=direction))
        for count in range(MAX_COUNT + 1):
            lines.append(THOUGHTS["count"].format(count=count, shape=shape))
    lines.append(QUESTIONS["order"])
    lines.append(QUESTIONS["colors_present"])
    lines.append(THOUGHTS["colors_present"].format(colors=", ".join(COLORS)))
    for letter in "ABCDEF":
        for word in (*COLORS, *DIRECTIONS, *SHAPES):
            lines.append(f"{letter}. {word}")
        for color in COLORS:
            for shape in SHAPES:
                lines.append(f"{letter}. {color} {shape}")
    return lines


# --- the opt-in needle task: `corpus_lines` reads none of these, so the tokenizer stays as it is ---------------

NEEDLE_TASK = "needle"
"""A task outside TASKS (the default task list): a shape shows for a few frames of a long clip."""

NEEDLE_QUESTIONS: dict[str, str] = {
    "color": "What color is the {shape} that briefly appears?",
    "second": "In which second does the {color} {shape} first appear? Count whole seconds from the start, from 0.",
    "grounding": "When does the {color} {shape} appear?",
}
"""Needle question kinds: the event's colour (MC), the whole second it first shows (numerical), its span (grounding)."""

NEEDLE_THOUGHTS: dict[str, str] = {
    "color": "The {shape} that shows at {start}s is {color}.",
    "second": "The {color} {shape} first shows at {start}s, which is in second {second}.",
    "grounding": "The {color} {shape} shows from {start}s until {end}s.",
}

NEEDLE_SEARCH_THOUGHT = "The preview misses the {target}; search the whole video."


# --- the opt-in perception tasks: images with boxes as answers; `corpus_lines` reads none of these either ---------

PERCEPTION_TASKS: tuple[str, ...] = ("rec", "detection")
"""Image tasks outside TASKS: the box of the one shape a phrase names (REC), the boxes of every shape of a kind."""

SIZE_WORDS: tuple[str, ...] = ("small", "large")
"""Size words of perception shapes, smallest first."""

PERCEPTION_QUESTIONS: dict[str, str] = {
    "rec": "Where is the {size} {color} {shape}?",
    "detection": "Where is every {shape}?",
}

PERCEPTION_THOUGHTS: dict[str, str] = {
    "rec": "The {size} {color} {shape} spans {box}.",
    "detection": "There are {count} {shape}s.",
}


# --- the opt-in claim tasks: clips that expose what an RL method claims; `corpus_lines` reads none of these -------

CLAIM_TASKS: tuple[str, ...] = ("compare", "difficulty_mix", "direction_fixed", "colors_fixed")
"""Video tasks outside TASKS: which of two shape kinds is more numerous (the thought states both counts, so it
can be checked against the answer), a seeded mix of easy and hard counts, each labelled with its difficulty, and
the direction and colours-present questions with their options in one fixed order."""

CLAIM_QUESTIONS: dict[str, str] = {
    "compare": "Are there more {first}s than {second}s?",
}

CLAIM_THOUGHTS: dict[str, str] = {
    "compare": "I count {first_count} {first}s and {second_count} {second}s.",
}

YES_NO: tuple[str, str] = ("yes", "no")
"""The options of a compare question, in option order: A is yes, B is no."""
