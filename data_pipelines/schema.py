"""The one sample record every reader produces."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

PROBLEM_TYPES: tuple[str, ...] = (
    "multiple choice",
    "numerical",
    "OCR",
    "free-form",
    "regression",
    "multi-answer",
    "grounding",
    "sequence",
    "box",
    "detection",
)
"""Problem types of the Video-R1 record format, TW-GRPO's multi-answer multiple choice, TimeSearch-R's
temporal grounding (a time span as ``{"start_time": s, "end_time": e}``) and event order (``(b)(a)(c)``), and
image perception: one box ``[x1, y1, x2, y2]`` for a referring expression (``box``) and a list of boxes
(``detection``), in the pixels of the resized image the model sees."""

DataType = Literal["video", "image", "text"]

MEDIA_OVERRIDE_KEYS: frozenset[str] = frozenset(
    {"fps", "nframes", "min_frames", "max_frames", "min_pixels", "max_pixels", "total_pixels"}
)
"""Per-sample sampling keys with qwen-vl-utils semantics; they override the config's media defaults."""


class RecordError(ValueError):
    """A dataset record cannot be used; the message names the file, the record and the field."""


@dataclass(frozen=True)
class Sample:
    """One prompt: a question about at most one video or image (plus any `extra_images`), with its ground truth.

    `solution` is the raw ``<answer>…</answer>`` string of the record and `answer` its stripped
    content. `origin` is ``"<file>#<index>"`` so any later error can name the record.
    `extra_images` are images shown after the primary media, in order (SEED-Bench-R1's
    current-observation frame after its task-progress video).
    """

    sample_id: str
    problem: str
    problem_type: str
    data_type: DataType
    media_path: Path | None
    options: tuple[str, ...]
    solution: str
    answer: str
    origin: str
    process: str | None = None
    media_overrides: Mapping[str, float] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    extra_images: tuple[Path, ...] = ()

    @property
    def option_letters(self) -> tuple[str, ...]:
        """The letters the options are labelled with (``"A. red"`` → ``"A"``)."""
        return tuple(option_letter(o) for o in self.options)


def option_letter(option: str) -> str:
    """The label of an option string such as ``"A. red"``, ``"(B) took"`` or ``"C red"``."""
    text = option.strip().lstrip("(")
    if not text or not text[0].isalpha() or not text[0].isupper():
        raise ValueError(f"option {option!r} does not start with a capital letter label")
    return text[0]
