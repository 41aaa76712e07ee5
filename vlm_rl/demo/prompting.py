"""From the demo's form to the project's records: the Sample, the prompt mode and the frame settings."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

from data_pipelines.prompts import QUESTION_TEMPLATES
from data_pipelines.schema import PROBLEM_TYPES, Sample
from vlm_rl.config import DataConfig, ImageConfig
from vlm_rl.demo.completion_view import DIRECT_PREFILL
from vlm_rl.demo.settings import DemoError
from vlm_rl.rewards.accuracy import normalize_number

PROMPT_MODES = ("think-answer", "think-or-not (TON)", "direct")
"""think-answer: the question as the model was trained on it; think-or-not: TON's hybrid instruction as system
turn (the model may skip its thought); direct: the answer starts with TON's empty thought, so the model answers
at once."""

WORDINGS = tuple(QUESTION_TEMPLATES)
"""Question templates the demo offers (the data pipelines' think-answer wordings)."""

THINK_OR_NOT_SYSTEM = (
    "You are a helpful assistant. Decide first whether the question needs reasoning. If it is simple, skip the "
    "reasoning and write an empty thought: <think>\n\n</think><answer>answer here</answer>. If it is difficult, "
    "reason step by step inside <think> </think>, then give the final answer inside <answer> </answer>."
)
"""TON's hybrid prompt (arXiv 2505.16854 §5.4), in this project's words: think only when the question needs it."""

_LABELLED = re.compile(r"\(?[A-Z][.:)]\s")
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class PromptSettings:
    """The frame and prompt choices of one request; ``fps`` 0 takes exactly ``max_frames`` evenly spaced frames."""

    fps: float
    max_frames: int
    max_pixels: int
    mode: str
    wording: str

    def __post_init__(self) -> None:
        if self.mode not in PROMPT_MODES:
            raise DemoError(f"unknown prompt mode {self.mode!r}; choose one of {', '.join(PROMPT_MODES)}")
        if self.wording not in WORDINGS:
            raise DemoError(f"unknown question wording {self.wording!r}; choose one of {', '.join(WORDINGS)}")
        if self.fps < 0 or self.max_frames < 1 or self.max_pixels < 1:
            raise DemoError("fps must be >= 0, max frames and max pixels >= 1")

    @property
    def prefill(self) -> str:
        """Text the answer starts with (written by the demo, not generated)."""
        return DIRECT_PREFILL if self.mode == "direct" else ""

    @classmethod
    def from_data_config(cls, data: DataConfig) -> PromptSettings:
        """The settings a model was trained with (its wording if the demo offers it, else Video-R1's evaluation one)."""
        video = data.video
        wording = data.prompt_template if data.prompt_template in WORDINGS else "video_r1_eval"
        fps, frames = (video.fps, video.max_frames) if video.fps is not None else (0.0, video.nframes)
        return cls(fps=fps, max_frames=frames, max_pixels=video.max_pixels, mode=PROMPT_MODES[0], wording=wording)

    def data_config(self, base: DataConfig) -> DataConfig:
        """`base` with these frame, pixel and prompt choices."""
        video = base.video
        frames = {"fps": self.fps, "nframes": None, "min_frames": min(video.min_frames, self.max_frames)}
        if self.fps == 0:
            frames = {"fps": None, "nframes": self.max_frames, "min_frames": video.min_frames}
        video = dataclasses.replace(
            video,
            **frames,
            max_frames=self.max_frames,
            max_pixels=self.max_pixels,
            min_pixels=min(video.min_pixels, self.max_pixels),
        )
        image = ImageConfig(min_pixels=min(base.image.min_pixels, self.max_pixels), max_pixels=self.max_pixels)
        system = THINK_OR_NOT_SYSTEM if self.mode == "think-or-not (TON)" else base.system_prompt
        return dataclasses.replace(base, video=video, image=image, prompt_template=self.wording, system_prompt=system)

    def search_data_config(self, base: DataConfig) -> DataConfig:
        """`data_config` with the frame-search prompt: its own system turn and instructions, so the prompt mode and
        the question wording do not apply (only the frame and pixel choices of the preview do)."""
        return dataclasses.replace(self.data_config(base), prompt_template="timesearch", system_prompt=base.system_prompt)


def parse_options(text: str) -> tuple[str, ...]:
    """One option per non-empty line; lines without a letter label (``A.``, ``B)``, ``(C)``) are labelled in order."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > len(_LETTERS):
        raise DemoError(f"{len(lines)} options; at most {len(_LETTERS)} are possible")
    if all(_LABELLED.match(line) for line in lines):
        return tuple(lines)
    return tuple(f"{letter}. {line}" for letter, line in zip(_LETTERS, lines))


def build_sample(
    media: Path, data_type: str, question: str, options: str = "", answer: str = "", problem_type: str = "auto"
) -> Sample:
    """The Sample the form describes.

    ``problem_type`` "auto" is multiple choice with options, numerical when the correct answer is a number, else
    free-form (scored with ROUGE, as Video-R1 does).
    """
    if not question.strip():
        raise DemoError("type a question")
    labelled = parse_options(options)
    answer = answer.strip()
    if problem_type == "auto":
        problem_type = (
            "multiple choice" if labelled else "numerical" if normalize_number(answer) is not None else "free-form"
        )
    if problem_type not in PROBLEM_TYPES:
        raise DemoError(f"unknown answer type {problem_type!r}; choose auto or one of {', '.join(PROBLEM_TYPES)}")
    if problem_type in ("multiple choice", "multi-answer") and not labelled:
        raise DemoError(f"a {problem_type} question needs options, one per line")
    return Sample(
        sample_id="demo",
        problem=question.strip(),
        problem_type=problem_type,
        data_type=data_type,
        media_path=media,
        options=labelled,
        solution=f"<answer>{answer}</answer>",
        answer=answer,
        origin=f"demo:{media.name}",
    )
