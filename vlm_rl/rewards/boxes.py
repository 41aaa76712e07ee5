"""Scores of box answers: referring-expression comprehension (one box, problem type ``box``) and detection (a
list of boxes, problem type ``detection``), in the pixels of the image the model sees.

Scorers take the extracted answer and ground truth strings, like the other accuracy scorers. An answer that
gives no box scores 0; a ground truth that gives none is a data error (ValueError), which the readers rule out.
"""

from __future__ import annotations

from collections.abc import Sequence

from data_pipelines.boxes import Box, box_iou, parse_box, parse_boxes
from data_pipelines.completion_format import answer_or_text, extract_answer

IOU_THRESHOLD = 0.5
"""A predicted box counts as right when its IoU with the true box is at least this."""


def box_iou_score(completion_answer: str, ground_truth: str) -> float:
    """IoU of the answer's first box with the true box; 0 when the answer gives no box."""
    truth = parse_box(ground_truth)
    if truth is None:
        raise ValueError(f"box ground truth {ground_truth!r} holds no [x1, y1, x2, y2] box")
    predicted = parse_box(completion_answer)
    return 0.0 if predicted is None else box_iou(predicted, truth)


def box_accuracy(completion_answer: str, ground_truth: str) -> float:
    """1 when the answer's first box has IoU >= `IOU_THRESHOLD` with the true box, else 0."""
    return 1.0 if box_iou_score(completion_answer, ground_truth) >= IOU_THRESHOLD else 0.0


def match_boxes(
    predicted: Sequence[Box], truth: Sequence[Box], threshold: float = IOU_THRESHOLD
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching: ``(predicted index, true index)`` pairs taken by decreasing IoU (ties by
    index), each box used at most once, only pairs with IoU >= `threshold`."""
    pairs = sorted(
        ((box_iou(p, t), i, j) for i, p in enumerate(predicted) for j, t in enumerate(truth)),
        key=lambda pair: (-pair[0], pair[1], pair[2]),
    )
    used_predicted: set[int] = set()
    used_truth: set[int] = set()
    matches = []
    for iou, i, j in pairs:
        if iou < threshold:
            break
        if i not in used_predicted and j not in used_truth:
            used_predicted.add(i)
            used_truth.add(j)
            matches.append((i, j))
    return matches


def f1_at_iou(predicted: Sequence[Box], truth: Sequence[Box], threshold: float = IOU_THRESHOLD) -> float:
    """F1 of `predicted` against `truth` under `match_boxes`: 2 * matches / (predicted + true boxes); 1 when both
    are empty. A repeated box matches once and counts as a false positive after that."""
    if not predicted and not truth:
        return 1.0
    return 2 * len(match_boxes(predicted, truth, threshold)) / (len(predicted) + len(truth))


def detection_f1(completion_answer: str, ground_truth: str) -> float:
    """F1 at IoU `IOU_THRESHOLD` of the answer's boxes against the true boxes; 0 when the answer gives none in a
    readable form (``[]`` is a readable empty list)."""
    truth = parse_boxes(ground_truth)
    if truth is None:
        raise ValueError(f"detection ground truth {ground_truth!r} is not a list of [x1, y1, x2, y2] boxes")
    predicted = parse_boxes(completion_answer)
    return 0.0 if predicted is None else f1_at_iou(predicted, truth)


def iou_reward(completion: str, solution: str, problem_type: str) -> float:
    """The ``iou`` reward: `box_iou_score` of the completion's ``<answer>`` on a ``box`` sample."""
    _check_type("iou", problem_type, "box")
    return box_iou_score(extract_answer(completion), answer_or_text(solution))


def detection_f1_reward(completion: str, solution: str, problem_type: str) -> float:
    """The ``detection_f1`` reward: `detection_f1` of the completion's ``<answer>`` on a ``detection`` sample."""
    _check_type("detection_f1", problem_type, "detection")
    return detection_f1(extract_answer(completion), answer_or_text(solution))


def _check_type(reward: str, problem_type: str, expected: str) -> None:
    if problem_type != expected:
        raise ValueError(
            f"reward {reward!r} scores {expected} samples, got a {problem_type!r} sample; "
            "use 'accuracy' (it scores each sample by its own problem type) for mixed data"
        )

