"""GRPO-CSV reward math (TimeSearch-R, arXiv 2511.05489): completeness self-verification.

A TimeSearch-R rollout searches the video with a tool and ends with an ``<answer>``. For CSV the
same policy is then shown only the frames that rollout retrieved and answers again (the
*verifier* answer). Every tensor here is per rollout, shape ``[N]``; the rollouts of one prompt
share a group id ``[N]`` only for the advantages, which need no new estimator: the official
recipe centres the rewards on the group mean without std scaling, which is the registered
``dr_grpo`` estimator (``A_i = r_i - mean_g(r)``).

Reward (the official "v7" weights): ``r = 1.0 * format + 0.5 * accuracy + 0.5 * csv`` with

- ``accuracy`` = the type-specific score of the rollout's answer when it gave exactly one
  ``<answer>``, else 0 (the single-answer rule);
- ``csv = up(accuracy) * up(verifier)``, where ``up(x) = 1`` if ``x > 0.5`` else ``x`` (scores
  are rounded up only, never down). For binary scores this is 1 exactly when both answers are
  right; for grounding IoUs 0.3 and 0.9 it is 0.3 * 1 = 0.3.

Grounding answers are scored by :func:`temporal_iou`. See ``docs/algorithms.md``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

CSV_REWARD_WEIGHTS: tuple[float, float, float] = (1.0, 0.5, 0.5)
"""Weights of (format, accuracy, csv) in the official reward."""


class CsvReward(NamedTuple):
    """The total reward and its three unweighted terms, each ``[N]``."""

    total: Tensor
    format: Tensor
    accuracy: Tensor
    csv: Tensor


def _check_scores(name: str, scores: Tensor, n: int | None = None) -> Tensor:
    """Validate a ``[N]`` tensor of scores in [0, 1] and return it as float."""
    if scores.dim() != 1:
        raise ValueError(f"{name} must be 1-D [N], got shape {tuple(scores.shape)}")
    if n is not None and scores.numel() != n:
        raise ValueError(f"{name} has {scores.numel()} entries but the other inputs have {n}")
    scores = scores.float()
    if not bool(((scores >= 0) & (scores <= 1)).all()):
        raise ValueError(f"{name} must hold scores in [0, 1]; got {scores.tolist()}")
    return scores


def round_up_only(scores: Tensor) -> Tensor:
    """``1`` where ``scores > 0.5``, the score itself elsewhere (0.5 stays 0.5)."""
    return torch.where(scores > 0.5, torch.ones_like(scores), scores)


def single_answer_accuracy(answer_scores: Tensor, num_answers: Tensor) -> Tensor:
    """Accuracy ``[N]``: the answer's score when the rollout gave exactly one ``<answer>``, else 0.

    Args:
        answer_scores: ``[N]`` type-specific scores in [0, 1] of each rollout's answer (ignored,
            though still checked, where the rollout has no single answer).
        num_answers: ``[N]`` integer count of assistant turns holding an ``<answer>``.
    """
    scores = _check_scores("answer_scores", answer_scores)
    if num_answers.shape != answer_scores.shape or num_answers.dtype.is_floating_point:
        raise ValueError(
            f"num_answers must be an integer tensor of shape {tuple(answer_scores.shape)}, "
            f"got {num_answers.dtype} {tuple(num_answers.shape)}"
        )
    return torch.where(num_answers == 1, scores, torch.zeros_like(scores))


def completeness_score(accuracy: Tensor, verifier_scores: Tensor) -> Tensor:
    """CSV term ``[N]``: ``round_up_only(accuracy) * round_up_only(verifier_scores)``.

    ``accuracy`` must already follow the single-answer rule; ``verifier_scores`` are the
    type-specific scores of the frames-only answers (0 for "I don't know").
    """
    accuracy = _check_scores("accuracy", accuracy)
    verifier = _check_scores("verifier_scores", verifier_scores, accuracy.numel())
    return round_up_only(accuracy) * round_up_only(verifier)


def csv_reward(
    format_ok: Tensor,
    answer_scores: Tensor,
    num_answers: Tensor,
    verifier_scores: Tensor,
    *,
    weights: tuple[float, float, float] = CSV_REWARD_WEIGHTS,
) -> CsvReward:
    """GRPO-CSV reward of ``N`` rollouts.

    Args:
        format_ok: ``[N]`` 1 where the whole multi-turn trajectory is well formatted, else 0.
        answer_scores: ``[N]`` type-specific scores in [0, 1] of each rollout's answer.
        num_answers: ``[N]`` integer count of assistant turns holding an ``<answer>``.
        verifier_scores: ``[N]`` scores in [0, 1] of the frames-only verifier answers.
        weights: (format, accuracy, csv) weights; a csv weight of 0 gives plain GRPO with search.

    Returns:
        :class:`CsvReward` with ``total = w_f * format + w_a * accuracy + w_c * csv``.
    """
    fmt = _check_scores("format_ok", format_ok, answer_scores.numel())
    if not bool(((fmt == 0) | (fmt == 1)).all()):
        raise ValueError(f"format_ok must hold 0 or 1; got {fmt.tolist()}")
    accuracy = single_answer_accuracy(answer_scores, num_answers)
    csv = completeness_score(accuracy, verifier_scores)
    w_fmt, w_acc, w_csv = weights
    total = w_fmt * fmt + w_acc * accuracy + w_csv * csv
    return CsvReward(total=total, format=fmt, accuracy=accuracy, csv=csv)


def temporal_iou(predicted: Tensor, target: Tensor) -> Tensor:
    """Temporal IoU of ``[start, end]`` intervals in seconds, shape ``[..., 2]`` -> ``[...]``.

    A predicted interval that is not finite, starts below 0 or ends before it starts scores 0 (it
    is a malformed answer, not an error). Intervals of zero length have no overlap length, so
    they score 0, also against themselves. Disjoint intervals score 0.

    Raises:
        ValueError: if the shapes differ or a target interval is malformed (a dataset error).
    """
    if predicted.shape != target.shape or predicted.shape[-1:] != (2,):
        raise ValueError(
            f"predicted and target must both have shape [..., 2]; got {tuple(predicted.shape)} "
            f"and {tuple(target.shape)}"
        )
    predicted = predicted.double()
    target = target.double()
    t_start, t_end = target[..., 0], target[..., 1]
    if not bool((torch.isfinite(target).all(-1) & (t_start >= 0) & (t_start <= t_end)).all()):
        raise ValueError(f"target intervals must satisfy 0 <= start <= end; got {target.tolist()}")
    p_start, p_end = predicted[..., 0], predicted[..., 1]
    valid = (p_start >= 0) & (p_start <= p_end)  # False for NaN too
    overlap = (torch.minimum(p_end, t_end) - torch.maximum(p_start, t_start)).clamp(min=0)
    union = (p_end - p_start) + (t_end - t_start) - overlap
    iou = torch.where(union > 0, overlap / torch.where(union > 0, union, torch.ones_like(union)), 0.0)
    return torch.where(valid, iou, torch.zeros_like(iou)).float()
