"""Accuracy rewards, one per problem type (Video-R1 ``grpo.py`` rules with GRPO-CARE's fixes; TW-GRPO soft reward).

Every scorer takes the already extracted answer strings ``(completion_answer, ground_truth)`` and returns a float in
[0, 1]. :func:`accuracy_reward` extracts both answers from raw text and dispatches on the problem type.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Literal

import torch

from data_pipelines.completion_format import answer_or_text, extract_answer
from vlm_rl.algorithms.csv_reward import temporal_iou
from vlm_rl.rewards.answers import split_letters
from vlm_rl.rewards.boxes import box_accuracy, detection_f1

if TYPE_CHECKING:
    from rouge_score.rouge_scorer import RougeScorer

AnswerScorer = Callable[[str, str], float]
McMode = Literal["strict", "lenient"]
MultiMode = Literal["soft", "strict"]

PROBLEM_TYPES: tuple[str, ...] = (
    "multiple choice", "numerical", "OCR", "free-form", "regression", "multi-answer", "grounding", "sequence", "box",
    "detection",
)

_OPTION_LETTER_RE = re.compile(r"(?<![A-Za-z0-9])([A-Z])(?![A-Za-z0-9])")
_ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, value))


def normalize_number(text: str) -> float | None:
    """``float(text.replace(',', ''))``, or ``None`` when that fails (Video-R1 ``normalize_number``)."""
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return None


def option_letter(text: str) -> str | None:
    """The first standalone capital letter A–Z in ``text`` (``"(B)"``, ``"B. put soil"``, ``"B"`` give ``"B"``).

    "Standalone" means not adjacent to another letter or digit, so words such as "Because" are skipped, but a
    leading pronoun "I" is taken as a letter. Lower-case letters are never matched.
    """
    match = _OPTION_LETTER_RE.search(text)
    return match.group(1) if match else None


def word_edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Levenshtein distance between two word sequences (unit cost for substitution, insertion, deletion)."""
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i]
        for j, hyp_word in enumerate(hyp, start=1):
            current.append(
                min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
            )
        previous = current
    return previous[-1]


def multiple_choice_strict_reward(completion_answer: str, ground_truth: str) -> float:
    """GRPO-CARE / Video-R1 multiple choice: 1 iff the stripped strings are equal (``"(B)"`` vs ``"B"`` scores 0)."""
    return 1.0 if completion_answer.strip() == ground_truth.strip() else 0.0


def multiple_choice_lenient_reward(completion_answer: str, ground_truth: str) -> float:
    """Lenient multiple choice: 1 iff the first standalone option letter of the answer equals the ground truth's.

    ``"(B)"`` and ``"B. put soil"`` match ``"B"``. A ground truth with no option letter falls back to the strict rule.
    """
    gold = option_letter(ground_truth)
    if gold is None:
        return multiple_choice_strict_reward(completion_answer, ground_truth)
    return 1.0 if option_letter(completion_answer) == gold else 0.0


def numerical_reward(completion_answer: str, ground_truth: str) -> float:
    """Video-R1 numerical reward with GRPO-CARE's fixes.

    0 if exactly one side contains ``.`` or ``,`` (decimal presence must agree: ``"3"`` vs ``"3.0"`` and
    ``"1,000"`` vs ``"1000"`` score 0); 0 if either side does not parse or is inf/nan; else 1 iff both round to
    the same value at 2 decimals.
    """
    gt_decimal = "." in ground_truth or "," in ground_truth
    out_decimal = "." in completion_answer or "," in completion_answer
    if gt_decimal != out_decimal:
        return 0.0
    gt = normalize_number(ground_truth)
    out = normalize_number(completion_answer)
    if gt is None or out is None or not math.isfinite(gt) or not math.isfinite(out):
        return 0.0
    return 1.0 if round(gt, 2) == round(out, 2) else 0.0


def ocr_reward(completion_answer: str, ground_truth: str) -> float:
    """1 − word error rate, WER = word Levenshtein(ref=gt words, hyp=answer words) / max(1, len(ref)); in [0, 1]."""
    ref = ground_truth.split()
    hyp = completion_answer.split()
    return _clip01(1.0 - word_edit_distance(ref, hyp) / max(1, len(ref)))


@functools.cache
def _rouge_scorer() -> RougeScorer:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(list(_ROUGE_TYPES), use_stemmer=True)


def free_form_reward(completion_answer: str, ground_truth: str) -> float:
    """Mean of ROUGE-1, ROUGE-2 and ROUGE-L F-measures (Porter stemming), clipped to [0, 1]."""
    scores = _rouge_scorer().score(ground_truth, completion_answer)
    return _clip01(sum(scores[kind].fmeasure for kind in _ROUGE_TYPES) / len(_ROUGE_TYPES))


def regression_reward(completion_answer: str, ground_truth: str) -> float:
    """1 − clip((|out − gt| + 1e-9) / (|gt| + 1e-9), 0, 1); 0 if either side does not parse or is inf/nan.

    As in Video-R1 the epsilons make ``gt = out = 0`` score 0 (relative error 1); an exact non-zero match scores
    1 − 1e-9/|gt|, i.e. 1 to float precision for ordinary magnitudes.
    """
    gt = normalize_number(ground_truth)
    out = normalize_number(completion_answer)
    if gt is None or out is None or not math.isfinite(gt) or not math.isfinite(out):
        return 0.0
    relative_error = (abs(out - gt) + 1e-9) / (abs(gt) + 1e-9)
    return 1.0 - _clip01(relative_error)


def multi_answer_reward(completion_answer: str, ground_truth: str) -> float:
    """TW-GRPO soft reward: with S, G the letter sets (:func:`split_letters`), |S|/|G| if S ⊆ G else 0.

    An empty prediction (or empty gold set) scores 0. No symbolic (math-verify) pre-check is done.
    """
    predicted = split_letters(completion_answer)
    gold = split_letters(ground_truth)
    if not predicted or not gold or not predicted <= gold:
        return 0.0
    return len(predicted) / len(gold)


def multi_answer_strict_reward(completion_answer: str, ground_truth: str) -> float:
    """TW-GRPO ``origin_accuracy``: 1 iff the predicted letter set equals the gold set (soft reward < 1 gives 0)."""
    return 1.0 if multi_answer_reward(completion_answer, ground_truth) == 1.0 else 0.0


def _time_span(text: str) -> tuple[float, float] | None:
    """``{"start_time": s, "end_time": e}`` (JSON) as floats, or None when it is not such a span."""
    try:
        span = json.loads(text)
        return float(span["start_time"]), float(span["end_time"])
    except (ValueError, TypeError, KeyError):
        return None


def grounding_reward(completion_answer: str, ground_truth: str) -> float:
    """TimeSearch-R temporal grounding: the IoU of the predicted and true time spans (0 when the prediction is
    not a span ``{"start_time": s, "end_time": e}`` or is not a valid interval)."""
    predicted, gold = _time_span(completion_answer), _time_span(ground_truth)
    if predicted is None or gold is None:
        return 0.0
    return float(temporal_iou(torch.tensor(predicted, dtype=torch.float64), torch.tensor(gold, dtype=torch.float64)))


_SEQUENCE_INDEX = re.compile(r"\(\s*([a-z])\s*\)", re.IGNORECASE)


def sequence_reward(completion_answer: str, ground_truth: str) -> float:
    """TimeSearch-R event order: 1 iff the predicted indices ``(b)(a)(c)`` equal the true ones, in order."""
    predicted = [i.lower() for i in _SEQUENCE_INDEX.findall(completion_answer)]
    gold = [i.lower() for i in _SEQUENCE_INDEX.findall(ground_truth)]
    return 1.0 if gold and predicted == gold else 0.0


_SCORERS: dict[str, AnswerScorer] = {
    "grounding": grounding_reward,
    "sequence": sequence_reward,
    "numerical": numerical_reward,
    "OCR": ocr_reward,
    "free-form": free_form_reward,
    "regression": regression_reward,
    "box": box_accuracy,
    "detection": detection_f1,
}
_MC_SCORERS: dict[str, AnswerScorer] = {
    "strict": multiple_choice_strict_reward,
    "lenient": multiple_choice_lenient_reward,
}
_MULTI_SCORERS: dict[str, AnswerScorer] = {"soft": multi_answer_reward, "strict": multi_answer_strict_reward}


def scorer_for(problem_type: str, *, mc_mode: McMode = "strict", multi_mode: MultiMode = "soft") -> AnswerScorer:
    """The answer scorer for a problem type; ValueError for an unknown type or mode."""
    if problem_type not in PROBLEM_TYPES:
        raise ValueError(f"unknown problem_type {problem_type!r}; known types: {', '.join(map(repr, PROBLEM_TYPES))}")
    if mc_mode not in _MC_SCORERS:
        raise ValueError(f"unknown mc_mode {mc_mode!r}; expected 'strict' or 'lenient'")
    if multi_mode not in _MULTI_SCORERS:
        raise ValueError(f"unknown multi_mode {multi_mode!r}; expected 'soft' or 'strict'")
    if problem_type == "multiple choice":
        return _MC_SCORERS[mc_mode]
    if problem_type == "multi-answer":
        return _MULTI_SCORERS[multi_mode]
    return _SCORERS[problem_type]


def accuracy_reward(
    completion: str,
    solution: str,
    problem_type: str,
    *,
    mc_mode: McMode = "strict",
    multi_mode: MultiMode = "soft",
) -> float:
    """Accuracy of one completion against its solution, in [0, 1].

    The prediction is the first ``<answer>`` block of ``completion`` (``""`` if none: no fallback to the full
    text); the ground truth is the first ``<answer>`` block of ``solution``, or the stripped solution when it has
    no answer tags. ``mc_mode`` picks strict (GRPO-CARE, string equality) or lenient (first option letter)
    multiple choice; ``multi_mode`` picks TW-GRPO's soft or strict (``origin_accuracy``) multi-answer reward.
    Raises ValueError for an unknown ``problem_type`` or mode.
    """
    scorer = scorer_for(problem_type, mc_mode=mc_mode, multi_mode=multi_mode)
    return scorer(extract_answer(completion), answer_or_text(solution))
