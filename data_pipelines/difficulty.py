"""DeepVideo-R1's difficulty-aware augmentation, the parts that need no model.

DeepVideo-R1 (arXiv 2506.07464, Sec. 3.3 and App. C.1; docs/algorithms.md) measures
how hard a prompt is relative to recent training and, when the group of G rollouts carries no signal, changes
the input before sampling again:

- the difficulty is ``Δ = mean(recent group mean rewards) − this group's mean reward`` (Eq. 9), kept by
  `DifficultyTracker`; Δ > 0 is "hard", Δ < 0 is "easy" (`classify`);
- a hard prompt gets a hint: the first ``l_guide = round(|Δ|) + 1`` sentences of a reasoning trace that was
  generated with the ground-truth answer in the prompt (`answer_revealing_question`, `hint_from_trace`,
  `hinted_question`);
- an easy prompt gets Gaussian noise on its frames, ``ṽ = v + l_perturb · σ₀ · τ`` with
  ``l_perturb = |Δ| + 1`` (`add_frame_noise`). The paper also mentions masking frames; that is not done here.

The model calls (generating the guided traces, picking the best one, resampling) belong to the trainer. The
trainer's order per prompt is: ``Δ = tracker.delta(mean(R))``, then ``tracker.push(mean(R))`` with the
*original* group's rewards, then augment iff ``should_augment(std(R))`` and ``classify(Δ) != "none"``.

Choices the paper leaves open (our defaults; parameters where one can differ):

- Replay window: the last ``W = 100`` group means, one entry per prompt (not per step), original groups only;
  with an empty window Δ is None and nothing is augmented (`DifficultyTracker`, ``window``).
- Δ is rounded to `DELTA_DECIMALS` decimal places, so that float noise from averaging neither makes an
  average group "hard"/"easy" nor moves a half (0.7 − 0.2 gives 0.5, not 0.49999999999999994).
- Halves of |Δ| round up (``round(0.5) = 1``, ``round(1.5) = 2``, ``round(2.5) = 3``), unlike Python's
  half-to-even `round` (`guidance_level`).
- Trigger: only when the group's reward std is at most ``threshold = 0.0`` (`should_augment`); the paper's
  text would augment whenever Δ ≠ 0.
- Guidance unit: sentences of the trace's reasoning (`split_sentences`); the level counts sentences that
  survive the leakage filter, so leaky sentences do not use up the level.
- Leakage filter: a sentence is dropped when it names the answer (`mentions_answer`) or matches
  ``reveal_pattern`` (default `REVEAL_PATTERN`: "answer", "ground truth", "correct option", …).
- Prompt wordings: `HINT_TEMPLATE` and `ANSWER_REVEAL_TEMPLATE`. Both take the question *before* the output
  template of `data_pipelines.prompts` is applied, so the format instruction stays last.
- Noise units: [0, 1] pixels before the processor's normalization, clipped back to [0, 1] and rounded to
  uint8; i.i.d. per element (frame, channel, row, column). The base ``sigma0`` has no recommended value and
  must be given.

Δ is on the reward's scale (format + accuracy gives rewards in 0..2, so |Δ| ≤ 2); another reward set changes
what the levels mean.
"""

from __future__ import annotations

import math
import numbers
import re
from collections import deque
from collections.abc import Iterable
from typing import Any, Literal

import torch

from data_pipelines.completion_format import (
    ANSWER,
    THINK,
    THINK_BLOCK,
    before_first_answer,
    remove_answer_blocks,
    tag_pattern,
    whole_answer_content,
)

Difficulty = Literal["hard", "easy", "none"]

DEFAULT_WINDOW = 100
"""Replay window W: the number of recent group mean rewards averaged in Δ (paper App. C.1)."""

DEFAULT_STD_THRESHOLD = 0.0
"""Augment only groups whose reward std is at most this, i.e. groups with identical rewards."""

DELTA_DECIMALS = 12
"""`DifficultyTracker.delta` rounds Δ to this many decimal places (removes float noise; rewards are O(1))."""

HINT_TEMPLATE = "{question}\nHint: {hint}"
"""The hinted question q̃: the question, a newline, ``"Hint: "`` and the hint sentences."""

ANSWER_REVEAL_TEMPLATE = (
    "{question}\nThe correct answer is: {answer}\n"
    "Explain step by step how the video leads to this answer, without stating the answer in your reasoning."
)
"""The prompt for the guided traces: the question with the ground-truth answer added."""

REVEAL_PATTERN = re.compile(
    r"\b(?:answers?|ground[\s-]*truth|(?:correct|right|final|given|provided)\s+(?:option|choice|label))\b",
    re.IGNORECASE,
)
"""Sentences matching this are dropped from hints: they talk about the answer the generation was shown."""

# fmt: off
NUMBER_WORDS: dict[str, int] = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
}
# fmt: on
"""Number words treated as numbers when looking for a numeric answer in a sentence (and the reverse)."""

_STRAY_TAG = tag_pattern(THINK, ANSWER)
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?=\s)|\n")
_ENUMERATOR = re.compile(r"(?:step\s*)?\(?(?:\d{1,3}|[ivx]{1,4}|[a-z])[.):]?", re.IGNORECASE)
_OPTION = re.compile(r"\(?([A-Za-z])\)?(?:[.):]\s*(.*))?", re.DOTALL)
_NUMBER_TOKEN = re.compile(r"(?<![\w.])\d+(?:,\d{3})*(?:\.\d+)?(?!\w|\.\d)")
_NUMBER_WORD = re.compile(r"\b(?:" + "|".join(NUMBER_WORDS) + r")\b", re.IGNORECASE)


class DifficultyTracker:
    """The replay buffer B_W of DeepVideo-R1's Eq. 9: the last `window` group mean rewards.

    One entry per prompt: the mean of its ORIGINAL group's G rewards, never of an augmented group. Call `delta`
    before `push` for the same group, so a group is not compared with itself.
    """

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window must be a positive integer, got {window!r}")
        self.window = window
        self._means: deque[float] = deque(maxlen=window)

    def __len__(self) -> int:
        return len(self._means)

    def delta(self, group_mean_reward: float) -> float | None:
        """Δ = mean of the window − `group_mean_reward`, rounded to `DELTA_DECIMALS`; None while the window is empty."""
        value = _finite(group_mean_reward, "group_mean_reward")
        if not self._means:
            return None
        return round(math.fsum(self._means) / len(self._means) - value, DELTA_DECIMALS)

    def push(self, group_mean_reward: float) -> None:
        """Append an original group's mean reward; the oldest entry leaves once there are `window` of them."""
        self._means.append(_finite(group_mean_reward, "group_mean_reward"))

    def state_dict(self) -> dict[str, Any]:
        """A JSON-serialisable snapshot: ``{"window": W, "group_means": [oldest, …, newest]}``."""
        return {"window": self.window, "group_means": list(self._means)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the entries of a `state_dict`, keeping this tracker's `window`.

        When the saved window differs, the most recent ``min(len, window)`` entries are kept, which is what the
        buffer would hold had it always had this window.
        """
        means = state.get("group_means") if isinstance(state, dict) else None
        if not isinstance(means, list):
            raise TypeError("state must be a dict with a 'group_means' list, as made by DifficultyTracker.state_dict")
        self._means = deque((_finite(m, "state['group_means'] entry") for m in means), maxlen=self.window)


def classify(delta: float) -> Difficulty:
    """``"hard"`` for Δ > 0 (below the recent average: add hints), ``"easy"`` for Δ < 0 (add noise), else ``"none"``."""
    value = _finite(delta, "delta")
    if value > 0:
        return "hard"
    if value < 0:
        return "easy"
    return "none"


def guidance_level(delta: float) -> int:
    """l_guide = round(|Δ|) + 1 (arXiv 2506.07464v2), with halves rounded up: 0.5 → 2, 1.5 → 3, 2.5 → 4."""
    magnitude = abs(_finite(delta, "delta"))
    whole = math.floor(magnitude)
    return whole + (1 if magnitude - whole >= 0.5 else 0) + 1


def perturbation_level(delta: float) -> float:
    """l_perturb = |Δ| + 1 (arXiv 2506.07464v2): the multiple of σ₀ used by `add_frame_noise`."""
    return abs(_finite(delta, "delta")) + 1.0


def should_augment(rewards_std: float, threshold: float = DEFAULT_STD_THRESHOLD) -> bool:
    """Whether a group is augmented: its reward std is at most `threshold` (default: all rewards equal).

    A NaN std gives False.
    """
    if not threshold >= 0:
        raise ValueError(f"threshold must be >= 0, got {threshold!r}")
    return bool(rewards_std <= threshold)


def answer_revealing_question(question: str, answer: str) -> str:
    """The prompt for generating guided traces: `ANSWER_REVEAL_TEMPLATE` with the ground-truth `answer`."""
    return ANSWER_REVEAL_TEMPLATE.format(question=question, answer=_plain_answer(answer))


def hinted_question(question: str, hint: str) -> str:
    """The question q̃ of a hard prompt: `HINT_TEMPLATE`; an empty hint leaves `question` unchanged."""
    hint = hint.strip()
    return HINT_TEMPLATE.format(question=question, hint=hint) if hint else question


def split_sentences(text: str) -> list[str]:
    """Split reasoning into sentences, the unit of the guidance level.

    Boundaries are newlines and runs of ``.``, ``!`` or ``?`` (with any closing quote or bracket) followed by
    whitespace, so decimals like ``3.5`` stay whole. Whitespace inside a sentence is collapsed to one space,
    empty pieces are dropped, and a bare list marker (``"1."``, ``"Step 2."``, ``"(b)"``) is joined to the
    sentence after it. Abbreviations such as ``"e.g. "`` do end a sentence.
    """
    pieces: list[str] = []
    start = 0
    for end in _SENTENCE_END.finditer(text):
        pieces.append(text[start : end.end()])
        start = end.end()
    pieces.append(text[start:])
    sentences: list[str] = []
    marker = ""
    for piece in pieces:
        sentence = " ".join(piece.split())
        if not sentence:
            continue
        if _ENUMERATOR.fullmatch(sentence):
            marker = f"{marker} {sentence}".strip()
            continue
        sentences.append(f"{marker} {sentence}".strip())
        marker = ""
    if marker:
        sentences.append(marker)
    return sentences


def mentions_answer(text: str, answer: str) -> bool:
    """Whether `text` names the ground-truth `answer`; deliberately over-inclusive.

    `answer` may be wrapped in ``<answer>…</answer>``. It is also split on commas (``"A,C"``), and a piece
    like ``"(C)"`` or ``"D. move berries"`` gives its option letter and option text. Each of these is looked for
    as a whole word or phrase (any whitespace between words; ``7`` is not found in ``3.7`` or ``7,500``), single
    letters case-sensitively (so option ``"A"`` does not match the article "a"), everything else ignoring case.
    A numeric piece also matches any number in `text` with the same absolute value (``3`` matches ``3.0``, ``-3``
    and "three").
    """
    answer = _plain_answer(answer)
    return any(_contains_phrase(text, term) for term in _answer_terms(answer)) or any(
        _contains_number(text, value) for value in _answer_numbers(answer)
    )


def hint_from_trace(trace: str, level: int, *, answer: str, reveal_pattern: re.Pattern[str] = REVEAL_PATTERN) -> str:
    """The hint for a hard prompt: the first `level` safe sentences of a guided trace's reasoning.

    The reasoning is the first ``<think>…</think>`` block of `trace`, or else the text before its first
    ``<answer>``; any ``<answer>`` block (or unclosed ``<answer>`` and what follows) and stray tags are removed.
    It is split by `split_sentences`; a sentence is unsafe when `mentions_answer` finds `answer` in it or it
    matches `reveal_pattern`. The first `level` safe sentences are joined with spaces; if the joined text names
    the answer (a phrase across two sentences), sentences are dropped from the end until it does not. Returns
    ``""`` when nothing safe remains.
    """
    if isinstance(level, bool) or not isinstance(level, int) or level < 1:
        raise ValueError(f"level must be a positive integer, got {level!r}")
    answer = _plain_answer(answer)
    think = THINK_BLOCK.search(trace)
    reasoning = think.group(1) if think else before_first_answer(trace)
    reasoning = before_first_answer(remove_answer_blocks(reasoning, " "))
    reasoning = _STRAY_TAG.sub(" ", reasoning)
    safe = [
        sentence
        for sentence in split_sentences(reasoning)
        if not reveal_pattern.search(sentence) and not mentions_answer(sentence, answer)
    ]
    kept = safe[:level]
    while kept and mentions_answer(" ".join(kept), answer):
        kept.pop()
    return " ".join(kept)


def add_frame_noise(frames: torch.Tensor, level: float, *, sigma0: float, generator: torch.Generator) -> torch.Tensor:
    """The easy prompt's frames ṽ = clip(v + level · sigma0 · τ, 0, 1), τ ~ N(0, I).

    `frames` is uint8 ``[T, C, H, W]`` (`VideoClip.frames`, C = 3); v = frames / 255. The noise is i.i.d. per
    element, drawn on `generator`'s device (so a seed gives the same noise on any device of `frames`). The
    result is rounded back to a new uint8 tensor on `frames`' device; `frames` is not modified. `level` is
    `perturbation_level`; `sigma0` > 0 is the base std in [0, 1] pixel units.
    """
    if frames.dtype != torch.uint8 or frames.ndim != 4:
        raise ValueError(f"frames must be uint8 [T, C, H, W], got {frames.dtype} with shape {tuple(frames.shape)}")
    if not (math.isfinite(level) and level > 0):
        raise ValueError(f"level must be a finite number > 0, got {level!r}")
    if not (math.isfinite(sigma0) and sigma0 > 0):
        raise ValueError(f"sigma0 must be a finite number > 0, got {sigma0!r}")
    noise = torch.randn(frames.shape, generator=generator, device=generator.device, dtype=torch.float32)
    noisy = frames.to(torch.float32) / 255.0 + (level * sigma0) * noise.to(frames.device)
    return (noisy.clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def _finite(value: float, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _plain_answer(answer: str) -> str:
    """`answer` stripped, and unwrapped when it is a whole ``<answer>…</answer>`` block; it must not be empty."""
    wrapped = whole_answer_content(answer)
    plain = (answer if wrapped is None else wrapped).strip()
    if not plain:
        raise ValueError(f"answer must be non-empty, got {answer!r}")
    return plain


def _answer_terms(answer: str) -> Iterable[str]:
    """The answer, its comma-separated pieces, and each piece's option letter and option text."""
    yield answer
    for piece in answer.split(","):
        piece = piece.strip()
        if not piece:
            continue
        yield piece
        option = _OPTION.fullmatch(piece)
        if option:
            yield option.group(1)
            if option.group(2) and option.group(2).strip():
                yield option.group(2).strip()


def _contains_phrase(text: str, term: str) -> bool:
    words = term.split()
    if not words:
        return False
    body = r"\s+".join(re.escape(word) for word in words)
    flags = 0 if len(term) == 1 and term.isalpha() else re.IGNORECASE
    return re.search(rf"(?<!\w)(?<!\d[.,]){body}(?!\w)(?![.,]\d)", text, flags) is not None


def _answer_numbers(answer: str) -> set[float]:
    """Absolute values of the numeric pieces of the answer: digits (``"1,000"`` is 1000) or a number word."""
    values: set[float] = set()
    for piece in [answer, *answer.split(",")]:
        piece = piece.strip().lower()
        if piece in NUMBER_WORDS:
            values.add(float(NUMBER_WORDS[piece]))
            continue
        try:
            number = float(piece.replace(",", ""))
        except ValueError:
            continue
        if math.isfinite(number):
            values.add(abs(number))
    return values


def _contains_number(text: str, value: float) -> bool:
    numbers = [float(token.group().replace(",", "")) for token in _NUMBER_TOKEN.finditer(text)]
    numbers += [float(NUMBER_WORDS[word.group().lower()]) for word in _NUMBER_WORD.finditer(text)]
    return value in numbers
