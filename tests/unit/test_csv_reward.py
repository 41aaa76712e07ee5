"""GRPO-CSV reward and advantages (TimeSearch-R, arXiv 2511.05489)."""

from __future__ import annotations

import pytest
import torch

from vlm_rl.algorithms import (
    completeness_score,
    csv_reward,
    get_advantage_fn,
    round_up_only,
    single_answer_accuracy,
    temporal_iou,
)


def test_worked_example_group_of_four() -> None:
    # (1) formatted, correct, verifier correct; (2) formatted, correct, verifier "I don't know";
    # (3) formatted, wrong, verifier correct; (4) <answer> without <think>, correct, verifier correct.
    reward = csv_reward(
        format_ok=torch.tensor([1, 1, 1, 0]),
        answer_scores=torch.tensor([1.0, 1.0, 0.0, 1.0]),
        num_answers=torch.tensor([1, 1, 1, 1]),
        verifier_scores=torch.tensor([1.0, 0.0, 1.0, 1.0]),
    )
    assert reward.total.tolist() == [2.0, 1.5, 1.0, 1.0]
    assert reward.csv.tolist() == [1.0, 0.0, 0.0, 1.0]
    advantages = get_advantage_fn("dr_grpo")(reward.total, torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(advantages, torch.tensor([0.625, 0.125, -0.375, -0.375]))


def test_advantages_are_per_group() -> None:
    rewards = torch.tensor([2.0, 1.5, 1.0, 1.0, 0.0, 2.0])
    groups = torch.tensor([7, 7, 7, 7, 3, 3])
    advantages = get_advantage_fn("dr_grpo")(rewards, groups)
    torch.testing.assert_close(advantages, torch.tensor([0.625, 0.125, -0.375, -0.375, -1.0, 1.0]))


def test_csv_weight_zero_gives_plain_search_reward() -> None:
    reward = csv_reward(
        torch.tensor([1]), torch.tensor([1.0]), torch.tensor([1]), torch.tensor([1.0]), weights=(1.0, 0.5, 0.0)
    )
    assert reward.total.tolist() == [1.5]


def test_round_up_only() -> None:
    scores = torch.tensor([0.0, 0.3, 0.5, 0.51, 0.9, 1.0])
    assert round_up_only(scores).tolist() == pytest.approx([0.0, 0.3, 0.5, 1.0, 1.0, 1.0])


def test_csv_rounds_partial_scores_up_only() -> None:
    # Grounding: answer IoU 0.3, verifier IoU 0.9 -> 0.3 * 1; and the mirror case.
    csv = completeness_score(torch.tensor([0.3, 0.9, 0.6, 0.0]), torch.tensor([0.9, 0.3, 0.7, 1.0]))
    assert csv.tolist() == pytest.approx([0.3, 0.3, 1.0, 0.0])
    reward = csv_reward(torch.tensor([1]), torch.tensor([0.3]), torch.tensor([1]), torch.tensor([0.9]))
    assert reward.total.tolist() == pytest.approx([1.0 + 0.5 * 0.3 + 0.5 * 0.3])


def test_single_answer_rule() -> None:
    scores = torch.tensor([1.0, 1.0, 1.0, 0.4])
    counts = torch.tensor([1, 0, 2, 1])
    assert single_answer_accuracy(scores, counts).tolist() == pytest.approx([1.0, 0.0, 0.0, 0.4])
    # Two answers: no accuracy and hence no CSV, though the verifier is right.
    reward = csv_reward(torch.tensor([1]), torch.tensor([1.0]), torch.tensor([2]), torch.tensor([1.0]))
    assert (reward.accuracy.item(), reward.csv.item(), reward.total.item()) == (0.0, 0.0, 1.0)


@pytest.mark.parametrize(
    ("predicted", "target", "expected"),
    [
        ([0.0, 2.0], [3.0, 5.0], 0.0),  # disjoint
        ([2.0, 4.0], [4.0, 6.0], 0.0),  # touching
        ([2.0, 4.0], [0.0, 10.0], 0.2),  # nested
        ([0.0, 10.0], [2.0, 4.0], 0.2),  # nested the other way
        ([3.0, 7.0], [3.0, 7.0], 1.0),  # identical
        ([0.0, 6.0], [3.0, 9.0], 1.0 / 3.0),  # partial overlap
        ([5.0, 5.0], [0.0, 10.0], 0.0),  # zero-length prediction
        ([5.0, 5.0], [5.0, 5.0], 0.0),  # zero-length both
        ([7.0, 3.0], [3.0, 7.0], 0.0),  # reversed prediction
        ([-1.0, 4.0], [0.0, 4.0], 0.0),  # negative start
        ([float("nan"), 4.0], [0.0, 4.0], 0.0),  # not finite
    ],
)
def test_temporal_iou(predicted: list[float], target: list[float], expected: float) -> None:
    iou = temporal_iou(torch.tensor(predicted), torch.tensor(target))
    assert iou.shape == ()
    assert iou.item() == pytest.approx(expected)


def test_temporal_iou_batched() -> None:
    iou = temporal_iou(torch.tensor([[2.0, 4.0], [3.0, 7.0]]), torch.tensor([[0.0, 10.0], [3.0, 7.0]]))
    assert iou.tolist() == pytest.approx([0.2, 1.0])


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="target intervals"):
        temporal_iou(torch.tensor([0.0, 1.0]), torch.tensor([4.0, 2.0]))
    with pytest.raises(ValueError, match="target intervals"):
        temporal_iou(torch.tensor([0.0, 1.0]), torch.tensor([0.0, float("inf")]))
    with pytest.raises(ValueError, match=r"\[\.\.\., 2\]"):
        temporal_iou(torch.tensor([0.0, 1.0, 2.0]), torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="answer_scores must hold scores in"):
        csv_reward(torch.tensor([1]), torch.tensor([1.5]), torch.tensor([1]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="format_ok must hold 0 or 1"):
        csv_reward(torch.tensor([0.5]), torch.tensor([1.0]), torch.tensor([1]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="num_answers must be an integer"):
        single_answer_accuracy(torch.tensor([1.0]), torch.tensor([1.0]))
    with pytest.raises(ValueError, match="verifier_scores has 2 entries"):
        completeness_score(torch.tensor([1.0]), torch.tensor([1.0, 0.0]))
