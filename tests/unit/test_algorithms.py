"""Unit tests for vlm_rl.algorithms against hand-computed numbers.

The worked examples are stated in docs/algorithms.md ("Worked examples the unit tests check").
"""

from __future__ import annotations

import math

import pytest
import torch

from vlm_rl.algorithms import (
    ADVANTAGE_ESTIMATORS,
    AGGREGATIONS,
    KL_ESTIMATORS,
    LOSSES,
    AdvantageEstimator,
    KLEstimator,
    LossAggregation,
    Loss,
    Registry,
    clipped_surrogate,
    dr_grpo_advantages,
    get_advantage_fn,
    get_aggregation_fn,
    get_kl_fn,
    get_loss_fn,
    group_reward_std,
    group_stats,
    grpo_advantages,
    kl_k1,
    kl_k2,
    kl_k3,
    seq_mean_token_mean,
    seq_mean_token_sum_norm,
    token_mean,
)


def _close(actual: torch.Tensor, expected: list[float] | float, atol: float = 1e-6) -> None:
    torch.testing.assert_close(actual, torch.as_tensor(expected, dtype=actual.dtype), atol=atol, rtol=0)


# ---------------------------------------------------------------- advantages


def test_grpo_advantages_worked_example_g4() -> None:
    rewards = torch.tensor([2.0, 1.5, 1.0, 0.5])
    adv = grpo_advantages(rewards, torch.zeros(4, dtype=torch.long))
    _close(adv, [1.161715, 0.387238, -0.387238, -1.161715])


def test_grpo_advantages_worked_example_g2() -> None:
    adv = grpo_advantages(torch.tensor([2.0, 1.5]), torch.tensor([5, 5]))
    _close(adv, [0.706907, -0.706907])


def test_grpo_advantages_many_shuffled_groups_equal_each_group_alone() -> None:
    gen = torch.Generator().manual_seed(0)
    group_ids_by_group = [7, 3, -1, 42, 0]
    sizes = [4, 2, 1, 3, 5]
    rewards_by_group = [torch.rand(n, generator=gen, dtype=torch.float64) for n in sizes]
    rewards = torch.cat(rewards_by_group)
    group_ids = torch.cat([torch.full((n,), g) for g, n in zip(group_ids_by_group, sizes)])
    perm = torch.randperm(rewards.numel(), generator=gen)

    adv = grpo_advantages(rewards[perm], group_ids[perm])

    expected = torch.empty_like(rewards)
    start = 0
    for r in rewards_by_group:
        alone = grpo_advantages(r, torch.zeros(r.numel(), dtype=torch.long))
        if r.numel() > 1:
            torch.testing.assert_close(alone, (r - r.mean()) / (r.std() + 1e-4))
        expected[start : start + r.numel()] = alone
        start += r.numel()
    torch.testing.assert_close(adv, expected[perm])
    assert adv.dtype == torch.float64


def test_group_of_one_gets_zero_advantage() -> None:
    rewards = torch.tensor([3.0, 1.0, 2.0])
    adv = grpo_advantages(rewards, torch.tensor([0, 1, 1]))
    assert adv[0].item() == 0.0
    _close(adv[1:], [-0.5 / (math.sqrt(0.5) + 1e-4), 0.5 / (math.sqrt(0.5) + 1e-4)])


@pytest.mark.parametrize("eps", [1e-4, 0.0])
def test_all_equal_group_gets_exact_zero_without_nan(eps: float) -> None:
    rewards = torch.tensor([0.1, 0.1, 0.1, 1.0, 0.0])
    adv = grpo_advantages(rewards, torch.tensor([2, 2, 2, 9, 9]), eps=eps)
    assert not torch.isnan(adv).any()
    assert torch.equal(adv[:3], torch.zeros(3))
    expected = 0.5 / (math.sqrt(0.5) + eps)
    _close(adv[3:], [expected, -expected])


def test_batch_std_mode_uses_batch_std_and_group_mean() -> None:
    rewards = torch.tensor([1.0, 0.0, 3.0, 3.0])
    group_ids = torch.tensor([0, 0, 1, 1])
    adv = grpo_advantages(rewards, group_ids, std_mode="batch")
    # group means [0.5, 3]; unbiased std of all four rewards = sqrt(6.75 / 3) = 1.5
    _close(adv, [0.5 / 1.5001, -0.5 / 1.5001, 0.0, 0.0])
    assert not torch.allclose(adv, grpo_advantages(rewards, group_ids))


def test_scale_by_std_false_and_dr_grpo_are_mean_centred() -> None:
    rewards = torch.tensor([2.0, 1.5, 1.0, 0.5, 4.0, 0.0])
    group_ids = torch.tensor([1, 1, 1, 1, 0, 0])
    expected = [0.75, 0.25, -0.25, -0.75, 2.0, -2.0]
    _close(grpo_advantages(rewards, group_ids, scale_by_std=False), expected)
    _close(dr_grpo_advantages(rewards, group_ids), expected)
    with pytest.raises(ValueError, match="dr_grpo never scales"):
        dr_grpo_advantages(rewards, group_ids, scale_by_std=True)


def test_group_reward_std_and_group_stats() -> None:
    rewards = torch.tensor([1.0, 0.0, 0.3, 0.3, 5.0])
    group_ids = torch.tensor([0, 0, 1, 1, 2])
    std = group_reward_std(rewards, group_ids)
    _close(std[:2], [math.sqrt(0.5), math.sqrt(0.5)])
    assert torch.equal(std[2:], torch.zeros(3))
    stats = group_stats(rewards, group_ids)
    _close(stats.mean, [0.5, 0.5, 0.3, 0.3, 5.0])
    assert stats.size.tolist() == [2, 2, 2, 2, 1]


def test_advantage_input_validation() -> None:
    with pytest.raises(ValueError, match="std_mode"):
        grpo_advantages(torch.ones(2), torch.zeros(2, dtype=torch.long), std_mode="global")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="integer"):
        grpo_advantages(torch.ones(2), torch.zeros(2))
    with pytest.raises(ValueError, match="shape"):
        grpo_advantages(torch.ones(2), torch.zeros(3, dtype=torch.long))


# ---------------------------------------------------------------- KL estimators

_LOGP = torch.tensor([[-1.0, -3.0]])
_REF = torch.tensor([[-1.5, -1.0]])  # d = ref - logp = [-0.5, 2.0]


def test_kl_estimators_hand_numbers() -> None:
    _close(kl_k1(_LOGP, _REF), [[0.5, -2.0]])
    _close(kl_k2(_LOGP, _REF), [[0.125, 2.0]])
    _close(kl_k3(_LOGP, _REF), [[math.exp(-0.5) - 0.5, math.exp(2.0) - 3.0]])


def test_kl_estimators_clamp() -> None:
    _close(kl_k1(_LOGP, _REF, clamp=1.0), [[0.5, -1.0]])
    _close(kl_k2(_LOGP, _REF, clamp=1.0), [[0.125, 0.5]])
    _close(kl_k3(_LOGP, _REF, clamp=1.0), [[math.exp(-0.5) - 0.5, math.e - 2.0]])
    logp = _LOGP.clone().requires_grad_(True)
    kl_k3(logp, _REF, clamp=1.0).sum().backward()
    assert logp.grad is not None
    _close(logp.grad, [[1.0 - math.exp(-0.5), 0.0]])  # d k3 / d logp = 1 - exp(d); clamped -> 0
    with pytest.raises(ValueError, match="clamp"):
        kl_k3(_LOGP, _REF, clamp=0.0)


# ---------------------------------------------------------------- aggregation

_LOSS = torch.tensor([[1.0, 2.0, math.inf, 4.0], [5.0, 6.0, 7.0, 8.0], [9.0, 9.0, 9.0, 9.0]])
_MASK = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]])


@pytest.mark.parametrize("mask", [_MASK.bool(), _MASK.float()])
def test_aggregations_with_padding(mask: torch.Tensor) -> None:
    # row 0 mean 1.5, row 1 mean 6.5, row 2 empty (not counted); 29 over 6 tokens
    _close(seq_mean_token_mean(_LOSS, mask), 4.0)
    _close(token_mean(_LOSS, mask), 29.0 / 6.0)
    _close(seq_mean_token_sum_norm(_LOSS, mask, norm_const=4), 29.0 / 12.0)


def test_aggregations_empty_mask_and_errors() -> None:
    empty = torch.zeros(2, 3)
    loss = torch.ones(2, 3, requires_grad=True)
    assert seq_mean_token_mean(loss, empty).item() == 0.0
    assert token_mean(loss, empty).item() == 0.0
    with pytest.raises(ValueError, match="norm_const"):
        seq_mean_token_sum_norm(loss, empty)
    with pytest.raises(ValueError, match="shape"):
        token_mean(loss, torch.ones(2, 4))


# ---------------------------------------------------------------- policy loss


def _single_update_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    logp = (-torch.rand(3, 4, generator=torch.Generator().manual_seed(1))).requires_grad_(True)
    adv = torch.tensor([0.5, -2.0, 1.0])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    return logp, adv, mask


@pytest.mark.parametrize(
    ("aggregation", "denominator"),
    [
        ("seq_mean_token_mean", torch.tensor([[3.0 * 2.0], [1.0 * 2.0], [1.0]])),  # n_i * valid seqs
        ("token_mean", torch.tensor(4.0)),
        ("seq_mean_token_sum_norm", torch.tensor(3.0 * 8.0)),  # B * norm_const
    ],
)
def test_single_update_gradient_is_minus_advantage_over_denominator(
    aggregation: str, denominator: torch.Tensor
) -> None:
    logp, adv, mask = _single_update_case()
    out = clipped_surrogate(logp, logp.detach(), adv, mask, aggregation=aggregation, norm_const=8)
    out.loss.backward()
    assert logp.grad is not None
    expected_grad = -adv[:, None] * mask / denominator
    torch.testing.assert_close(logp.grad, expected_grad)
    torch.testing.assert_close(out.loss, (-adv[:, None] * mask / denominator).sum())
    assert out.ratio_mean.item() == pytest.approx(1.0)
    assert out.clip_fraction.item() == 0.0
    assert out.approx_kl.item() == pytest.approx(0.0, abs=1e-7)
    assert out.kl.item() == 0.0
    assert not out.clip_fraction.requires_grad and not out.approx_kl.requires_grad


def test_old_logp_is_detached_inside() -> None:
    logp, adv, mask = _single_update_case()
    clipped_surrogate(logp, logp, adv, mask).loss.backward()
    assert logp.grad is not None
    torch.testing.assert_close(logp.grad, -adv[:, None] * mask / torch.tensor([[6.0], [2.0], [1.0]]))


def _clip_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    ratios = torch.tensor([[1.5, 1.25, 0.7], [0.7, 1.5, 1.0]])
    logp = torch.zeros(2, 3, requires_grad=True)
    old_logp = -ratios.log()
    adv = torch.tensor([1.0, -1.0])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    return logp, old_logp, adv, mask


def test_clip_higher_gradients_and_diagnostics() -> None:
    logp, old_logp, adv, mask = _clip_case()
    out = clipped_surrogate(logp, old_logp, adv, mask, clip_low=0.2, clip_high=0.28, aggregation="token_mean")
    out.loss.backward()
    # per-token loss: [-1.28, -1.25, -0.7], [0.8, 1.5, pad] -> sum -0.93 over 5 tokens
    _close(out.loss, -0.93 / 5)
    # r=1.5,A>0 clipped above 1.28; r=1.25 inside the raised ceiling; r=0.7,A>0 unclipped;
    # r=0.7,A<0 clipped below 0.8; r=1.5,A<0 unclipped (min picks r*A)
    assert logp.grad is not None
    _close(logp.grad, [[0.0, -1.25 / 5, -0.7 / 5], [0.0, 1.5 / 5, 0.0]])
    _close(out.clip_fraction, 2 / 5)
    _close(out.ratio_mean, 5.65 / 5)
    kept = torch.tensor([1.5, 1.25, 0.7, 0.7, 1.5])
    _close(out.approx_kl, (kept - 1 - kept.log()).mean().item())


def test_symmetric_clip_also_clips_ratio_between_ceilings() -> None:
    logp, old_logp, adv, mask = _clip_case()
    out = clipped_surrogate(logp, old_logp, adv, mask, clip_low=0.2, clip_high=0.2, aggregation="token_mean")
    out.loss.backward()
    assert logp.grad is not None
    _close(logp.grad, [[0.0, 0.0, -0.7 / 5], [0.0, 1.5 / 5, 0.0]])
    _close(out.clip_fraction, 3 / 5)


def test_token_weights_worked_loss_example() -> None:
    adv = grpo_advantages(torch.tensor([2.0, 1.5]), torch.tensor([0, 0]))
    _close(adv, [0.706907, -0.706907])
    weights = torch.tensor([[1.0, 1.7, 1.005454, 0.0], [1.0, 1.7, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    logp = torch.zeros(2, 4, requires_grad=True)

    out = clipped_surrogate(logp, logp.detach(), adv, mask, aggregation="token_mean", token_weights=weights)
    out.loss.backward()
    _close(out.loss, -0.142152)
    assert logp.grad is not None
    _close(logp.grad, [[-0.141381, -0.240348, -0.142152, 0.0], [0.141381, 0.240348, 0.0, 0.0]])

    plain = clipped_surrogate(logp, logp.detach(), adv, mask)
    _close(plain.loss, 0.0)


def test_kl_penalty_adds_beta_times_kl() -> None:
    logp = torch.tensor([[-1.0, -3.0, -2.0]], requires_grad=True)
    ref = torch.tensor([[-1.5, -1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    adv = torch.tensor([0.5])
    k3 = [math.exp(-0.5) - 0.5, math.exp(2.0) - 3.0]
    out = clipped_surrogate(logp, logp.detach(), adv, mask, ref_logp=ref, beta=0.04)
    _close(out.loss, -0.5 + 0.04 * sum(k3) / 2)
    _close(out.kl, sum(k3) / 2)
    out.loss.backward()
    assert logp.grad is not None
    _close(logp.grad, [[(-0.5 + 0.04 * (1 - math.exp(-0.5))) / 2, (-0.5 + 0.04 * (1 - math.exp(2.0))) / 2, 0.0]])

    clamped = clipped_surrogate(logp, logp.detach(), adv, mask, ref_logp=ref, beta=0.04, kl_clamp=1.0)
    _close(clamped.kl, (k3[0] + math.e - 2.0) / 2)
    k1 = clipped_surrogate(logp, logp.detach(), adv, mask, ref_logp=ref, beta=0.04, kl_estimator="k1")
    _close(k1.kl, (0.5 - 2.0) / 2)


def test_beta_zero_needs_no_ref_and_positive_beta_without_ref_fails() -> None:
    logp, adv, mask = _single_update_case()
    assert clipped_surrogate(logp, logp.detach(), adv, mask, beta=0.0).kl.item() == 0.0
    with pytest.raises(ValueError, match="ref_logp"):
        clipped_surrogate(logp, logp.detach(), adv, mask, beta=0.1)


def test_policy_loss_input_validation() -> None:
    logp, adv, mask = _single_update_case()
    with pytest.raises(ValueError, match="advantages"):
        clipped_surrogate(logp, logp.detach(), adv[:2], mask)
    with pytest.raises(ValueError, match="mask"):
        clipped_surrogate(logp, logp.detach(), adv, mask[:, :2])
    with pytest.raises(KeyError, match="available"):
        clipped_surrogate(logp, logp.detach(), adv, mask, aggregation="sum")


# ---------------------------------------------------------------- registries


def test_registry_refuses_duplicates_and_lists_names_on_unknown() -> None:
    reg: Registry[int] = Registry("widget")
    reg.register("a")(1)
    reg.register(AdvantageEstimator.GRPO)(2)
    with pytest.raises(ValueError, match="widget 'a' is already registered"):
        reg.register("a")(3)
    with pytest.raises(ValueError, match="widget 'grpo' is already registered"):
        reg.register("grpo")(4)
    assert reg.get("a") == 1
    assert reg.get("grpo") == reg.get(AdvantageEstimator.GRPO) == 2
    assert reg.names() == ["a", "grpo"]
    assert "a" in reg and "b" not in reg
    with pytest.raises(KeyError, match=r"unknown widget 'b'; available: a, grpo"):
        reg.get("b")


def test_builtin_registries_contents_and_lookup() -> None:
    assert ADVANTAGE_ESTIMATORS.names() == sorted(e.value for e in AdvantageEstimator)
    assert KL_ESTIMATORS.names() == ["k1", "k2", "k3"]
    assert AGGREGATIONS.names() == sorted(e.value for e in LossAggregation)
    assert LOSSES.names() == sorted(e.value for e in Loss) == ["clipped_surrogate", "gspo", "reg_grpo"]
    assert get_advantage_fn("grpo") is grpo_advantages
    assert get_advantage_fn(AdvantageEstimator.DR_GRPO) is dr_grpo_advantages
    assert get_kl_fn(KLEstimator.K3) is kl_k3
    assert get_aggregation_fn("token_mean") is token_mean
    assert get_loss_fn(Loss.REG_GRPO) is LOSSES.get("reg_grpo")
    with pytest.raises(ValueError, match="advantage estimator 'grpo' is already registered"):
        ADVANTAGE_ESTIMATORS.register("grpo")(dr_grpo_advantages)
    assert get_advantage_fn("grpo") is grpo_advantages
    with pytest.raises(KeyError, match="available: k1, k2, k3"):
        get_kl_fn("k4")
