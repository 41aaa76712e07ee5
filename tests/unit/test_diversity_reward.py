"""Syn-GRPO's diversity reward: per-group population variance, its moving baseline, the description advantages."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vlm_rl.algorithms.diversity import DiversityBaseline, description_advantages, group_diversity


def _one_group(values: list[float]) -> float:
    accuracy = torch.tensor(values, dtype=torch.float32)
    return float(group_diversity(accuracy, torch.zeros(len(values), dtype=torch.long))[0])


@pytest.mark.parametrize(
    ("values", "expected"),
    [([1, 0], 0.25), ([1, 0, 1, 0], 0.25), ([1, 1, 1, 0], 0.1875), ([0, 0, 0, 1, 1, 1], 0.25), ([0.5, 1.0], 0.0625)],
)
def test_diversity_is_the_population_variance(values, expected):
    assert _one_group(values) == pytest.approx(expected, abs=1e-7)


@pytest.mark.parametrize("value", [0.0, 1.0, 0.3, 1e6, -7.25])
def test_a_group_that_agrees_has_exactly_zero_diversity(value):
    assert _one_group([value] * 8) == 0.0


def test_groups_are_told_apart_by_their_ids_not_their_positions():
    accuracy = torch.tensor([1.0, 5.0, 0.0, 5.0, 1.0, 5.0, 0.0, 1.0, 1.0])
    group_ids = torch.tensor([0, 1, 0, 1, 0, 1, 0, 2, 2])
    diversity = group_diversity(accuracy, group_ids)
    assert diversity.shape == (3,)
    assert torch.allclose(diversity, torch.tensor([0.25, 0.0, 0.0]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_the_output_keeps_the_input_dtype(dtype):
    diversity = group_diversity(torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=dtype), torch.tensor([0, 0, 0, 0]))
    assert diversity.dtype == dtype
    assert float(diversity[0]) == pytest.approx(0.1875)


def _random_group(rng: np.random.Generator, size: int) -> np.ndarray:
    """Uniform scores, 0/1 rewards or one large repeated value."""
    kind = int(rng.integers(3))
    if kind == 0:
        return rng.random(size)
    if kind == 1:
        return rng.integers(0, 2, size).astype(float)
    return np.full(size, rng.normal() * 1e3)


def test_diversity_matches_numpy_per_group_on_random_groups():
    rng = np.random.default_rng(0)
    for _ in range(200):
        sizes = rng.integers(1, 9, size=int(rng.integers(1, 6)))
        values = [_random_group(rng, int(n)) for n in sizes]
        ids = np.concatenate([np.full(n, g) for g, n in enumerate(sizes)])
        order = rng.permutation(len(ids))
        flat = np.concatenate(values)[order]
        got = group_diversity(torch.tensor(flat, dtype=torch.float64), torch.tensor(ids[order]))
        expected = np.array([np.var(v) for v in values])
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-9, atol=1e-12)


def test_the_first_update_sets_the_baseline_to_the_round_mean():
    baseline = DiversityBaseline(momentum=0.9)
    assert baseline.value is None
    baseline.update(torch.tensor([0.25, 0.0, 0.1875, 0.0625]))
    assert baseline.value == pytest.approx(0.125)


def test_later_updates_follow_the_moving_average():
    baseline = DiversityBaseline(momentum=0.75)
    baseline.update(torch.tensor([0.2, 0.0]))
    assert baseline.value == pytest.approx(0.1)
    baseline.update(torch.tensor([0.25, 0.25]))
    assert baseline.value == pytest.approx(0.75 * 0.1 + 0.25 * 0.25)
    baseline.update(torch.tensor([0.0, 0.0, 0.0]))
    assert baseline.value == pytest.approx(0.75 * 0.1375)


def test_an_empty_round_leaves_the_baseline_alone():
    baseline = DiversityBaseline(momentum=0.5)
    baseline.update(torch.tensor([]))
    assert baseline.value is None
    baseline.update(torch.tensor([0.2]))
    baseline.update(torch.tensor([]))
    assert baseline.value == pytest.approx(0.2)


def test_rewards_are_diversity_minus_the_baseline():
    baseline = DiversityBaseline(momentum=0.9, value=0.1)
    rewards = baseline.rewards(torch.tensor([0.1, 0.25, 0.0]))
    assert torch.allclose(rewards, torch.tensor([0.0, 0.15, -0.1]))
    assert float(rewards[0]) == 0.0
    assert baseline.value == 0.1


def test_before_any_update_rewards_are_measured_against_the_rounds_own_mean():
    rewards = DiversityBaseline(momentum=0.9).rewards(torch.tensor([0.25, 0.0, 0.05]))
    assert torch.allclose(rewards, torch.tensor([0.15, -0.1, -0.05]))


@pytest.mark.parametrize("momentum", [1.0, 1.5, -0.1])
def test_a_momentum_outside_zero_to_one_is_refused(momentum):
    with pytest.raises(ValueError, match="momentum"):
        DiversityBaseline(momentum=momentum)


def test_momentum_zero_follows_the_last_round():
    baseline = DiversityBaseline(momentum=0.0)
    baseline.update(torch.tensor([0.2]))
    baseline.update(torch.tensor([0.05]))
    assert baseline.value == pytest.approx(0.05)


def test_description_advantages_scale_the_rewards():
    baseline = DiversityBaseline(momentum=0.9, value=0.125)
    advantages = description_advantages(torch.tensor([0.25, 0.125, 0.0]), baseline, scale=4.0)
    assert torch.allclose(advantages, torch.tensor([0.5, 0.0, -0.5]))
    assert torch.allclose(description_advantages(torch.tensor([0.25]), baseline, scale=2.0), torch.tensor([0.25]))


def test_integer_rewards_give_float_diversity():
    assert group_diversity(torch.tensor([1, 0, 1, 0]), torch.tensor([0, 0, 0, 0])).tolist() == [0.25]


def test_the_worked_example_of_the_docs():
    baseline = DiversityBaseline(0.9, value=0.1)
    diversity = group_diversity(torch.tensor([1.0, 0, 1, 0, 1, 1, 1, 1]), torch.tensor([0, 0, 0, 0, 1, 1, 1, 1]))
    torch.testing.assert_close(description_advantages(diversity, baseline, 4.0), torch.tensor([0.6, -0.4]))
