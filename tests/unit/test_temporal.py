"""T-GRPO temporal contrast bonus, per group, against hand-worked cases."""

from __future__ import annotations

import pytest
import torch

from vlm_rl.algorithms import temporal_contrast_bonus


def test_bonus_when_ordered_accuracy_beats_shuffled():
    # group 0: p = 0.75 >= 0.8 * 0.5 -> bonus for the three correct ones;
    # group 1: p = 0.25 <  0.8 * 1.0 -> nothing.
    acc = torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0])
    groups = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    shuffled = torch.tensor([1.0, 0.0, 1.0, 1.0])
    shuffled_groups = torch.tensor([0, 0, 1, 1])
    bonus = temporal_contrast_bonus(acc, groups, shuffled, shuffled_groups)
    assert bonus.tolist() == pytest.approx([0.3, 0.3, 0.3, 0.0, 0.0, 0.0, 0.0, 0.0])


def test_threshold_equality_and_partial_credit():
    # p = 0.4, p_s = 0.5: 0.4 >= 0.8 * 0.5 holds with equality; a 0.1 accuracy is not above 0.1.
    acc = torch.tensor([0.6, 0.1, 0.5, 0.8, 0.0])
    groups = torch.zeros(5, dtype=torch.long)
    bonus = temporal_contrast_bonus(acc, groups, torch.tensor([0.5, 0.5]), torch.tensor([0, 0]))
    assert acc.mean().item() == pytest.approx(0.4)
    assert bonus.tolist() == pytest.approx([0.3, 0.0, 0.3, 0.3, 0.0])


def test_groups_in_any_order_and_groups_without_shuffled_samples():
    acc = torch.tensor([1.0, 0.0, 1.0, 1.0])
    groups = torch.tensor([5, 2, 5, 2])
    bonus = temporal_contrast_bonus(acc, groups, torch.tensor([0.0]), torch.tensor([5]))
    assert bonus.tolist() == pytest.approx([0.3, 0.0, 0.3, 0.0]), "group 2 has no shuffled rollouts"
    with pytest.raises(ValueError, match="same shape"):
        temporal_contrast_bonus(acc, groups[:2], torch.tensor([0.0]), torch.tensor([5]))
