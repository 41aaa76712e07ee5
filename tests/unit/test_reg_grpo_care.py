"""Unit tests for Reg-GRPO (arXiv 2506.07464) and GRPO-CARE (arXiv 2506.16141) math.

The worked examples are stated in docs/algorithms.md ("Worked examples the unit tests check").
"""

from __future__ import annotations

import pytest
import torch

from data_pipelines.completion_format import answer_content_span
from vlm_rl.algorithms.advantages import grpo_advantages
from vlm_rl.algorithms.care import (
    answer_span_confidence,
    care_bonus,
    ema_update_,
    should_update_ema,
)
from vlm_rl.algorithms.kl import kl_k3
from vlm_rl.algorithms.reg_grpo import (
    DegenerateMode,
    reg_grpo_loss,
    sequence_logp,
)

D = torch.float64


def _t(values: list[float]) -> torch.Tensor:
    return torch.tensor(values, dtype=D)


def _ref_reg_grpo(
    logp: torch.Tensor, old: torch.Tensor, rewards: torch.Tensor, groups: list[int], unbiased: bool, eps: float
) -> torch.Tensor:
    """Plain per-group loop: mean over groups of mean((A - A_theta)^2)."""
    losses = []
    for g in sorted(set(groups)):
        idx = torch.tensor([i for i, x in enumerate(groups) if x == g])
        r = rewards[idx]
        rho = logp[idx] - old[idx]
        a = (r - r.mean()) / (r.std(unbiased=unbiased) + eps)
        a_theta = (rho - rho.mean()) / rho.std(unbiased=unbiased)
        losses.append(((a - a_theta) ** 2).mean())
    return torch.stack(losses).mean()


# ---------------------------------------------------------------- Reg-GRPO


def test_reg_grpo_worked_example_population_std() -> None:
    rho = _t([0.2, -0.1, 0.0, 0.3]).requires_grad_()
    out = reg_grpo_loss(rho, torch.zeros(4, dtype=D), _t([1, 0, 0, 1]), torch.zeros(4, dtype=torch.long), eps=0.0)
    assert out.loss.item() == pytest.approx(0.102633, abs=1e-6)
    assert out.regression_loss.item() == pytest.approx(0.102633, abs=1e-6)
    torch.testing.assert_close(out.target_advantages, _t([1, -1, -1, 1]))
    torch.testing.assert_close(
        out.predicted_advantages, _t([0.632456, -1.264911, -0.632456, 1.264911]), atol=1e-6, rtol=0
    )
    out.loss.backward()
    torch.testing.assert_close(rho.grad, _t([-1.264911, -0.632456, 1.264911, 0.632456]), atol=1e-6, rtol=0)


def test_reg_grpo_worked_example_sample_std() -> None:
    out = reg_grpo_loss(
        _t([0.2, -0.1, 0.0, 0.3]),
        torch.zeros(4, dtype=D),
        _t([1, 0, 0, 1]),
        torch.zeros(4, dtype=torch.long),
        eps=0.0,
        unbiased=True,
    )
    assert out.loss.item() == pytest.approx(0.076975, abs=1e-6)
    torch.testing.assert_close(
        out.predicted_advantages, _t([0.547723, -1.095445, -0.547723, 1.095445]), atol=1e-6, rtol=0
    )


@pytest.mark.parametrize(("scale", "offset"), [(1.0, 0.0), (0.01, 0.0), (37.0, 0.0), (2.5, -4.0), (1.0, 3.0)])
def test_reg_grpo_invariant_to_affine_rho(scale: float, offset: float) -> None:
    rho = _t([0.2, -0.1, 0.0, 0.3])
    ids = torch.zeros(4, dtype=torch.long)
    out = reg_grpo_loss(scale * rho + offset, torch.zeros(4, dtype=D), _t([1, 0, 0, 1]), ids, eps=0.0)
    assert out.loss.item() == pytest.approx(0.102633, abs=1e-6)


def test_reg_grpo_uses_log_ratio_not_logp() -> None:
    logp = _t([-3.0, -7.5, -2.25, -10.0])
    old = logp - _t([0.2, -0.1, 0.0, 0.3])
    out = reg_grpo_loss(logp, old, _t([1, 0, 0, 1]), torch.zeros(4, dtype=torch.long), eps=0.0)
    assert out.loss.item() == pytest.approx(0.102633, abs=1e-6)


def test_reg_grpo_on_policy_raises_by_default() -> None:
    logp = _t([-3.0, -7.5, -2.25, -10.0]).requires_grad_()
    with pytest.raises(ValueError, match="on-policy"):
        reg_grpo_loss(logp, logp.detach(), _t([1, 0, 0, 1]), torch.zeros(4, dtype=torch.long))


def test_reg_grpo_on_policy_skip_gives_zero_loss_and_finite_zero_grad() -> None:
    logp = _t([-3.0, -7.5, -2.25, -10.0]).requires_grad_()
    out = reg_grpo_loss(
        logp, logp.detach(), _t([1, 0, 0, 1]), torch.zeros(4, dtype=torch.long), degenerate=DegenerateMode.SKIP
    )
    assert out.loss.item() == 0.0
    assert int(out.num_degenerate_groups) == 1
    assert out.log_ratio_std.item() == 0.0
    out.loss.backward()
    assert torch.equal(logp.grad, torch.zeros(4, dtype=D))


def test_reg_grpo_skip_drops_only_degenerate_groups() -> None:
    rho_live = _t([0.2, -0.1, 0.0, 0.3])
    rho = torch.cat([rho_live, torch.zeros(3, dtype=D)])
    ids = torch.tensor([5, 5, 5, 5, 9, 9, 9])
    rewards = _t([1, 0, 0, 1, 1, 0, 1])
    out = reg_grpo_loss(rho, torch.zeros(7, dtype=D), rewards, ids, eps=0.0, degenerate="skip")
    assert out.loss.item() == pytest.approx(0.102633, abs=1e-6)
    assert int(out.num_degenerate_groups) == 1
    assert torch.equal(out.predicted_advantages[4:], torch.zeros(3, dtype=D))


def test_reg_grpo_log_ratio_eps_gives_reinforce_gradient_on_policy() -> None:
    logp = _t([-3.0, -7.5, -2.25, -10.0]).requires_grad_()
    rewards = _t([1, 0, 0, 1])
    ieps = 1e-4
    out = reg_grpo_loss(logp, logp.detach(), rewards, torch.zeros(4, dtype=torch.long), eps=0.0, log_ratio_eps=ieps)
    assert int(out.num_degenerate_groups) == 0
    out.loss.backward()
    expected = -(2.0 / 4) * out.target_advantages / ieps**0.5
    torch.testing.assert_close(logp.grad, expected)


def test_reg_grpo_singletons_and_equal_rewards() -> None:
    rho = _t([0.4, 0.2, -0.1, 0.0, 0.3])
    ids = torch.tensor([3, 1, 1, 1, 1])
    out = reg_grpo_loss(rho, torch.zeros(5, dtype=D), _t([1, 2, 2, 2, 2]), ids)
    assert torch.equal(out.target_advantages, torch.zeros(5, dtype=D))
    assert out.predicted_advantages[0].item() == 0.0
    # only group 1 counts; the target is 0 so the loss is mean(A_theta^2) = 1 with population std
    assert out.loss.item() == pytest.approx(1.0)


def test_reg_grpo_groups_in_shuffled_batch_match_per_group_calls() -> None:
    gen = torch.Generator().manual_seed(0)
    sizes = {11: 4, 2: 6, 7: 3}
    logp_parts, old_parts, r_parts, id_parts = [], [], [], []
    per_group = []
    for gid, n in sizes.items():
        logp = torch.randn(n, generator=gen, dtype=D)
        old = logp + 0.3 * torch.randn(n, generator=gen, dtype=D)
        r = torch.randint(0, 3, (n,), generator=gen).to(D)
        ids = torch.full((n,), gid)
        per_group.append(reg_grpo_loss(logp, old, r, ids).loss)
        logp_parts.append(logp)
        old_parts.append(old)
        r_parts.append(r)
        id_parts.append(ids)
    perm = torch.randperm(sum(sizes.values()), generator=gen)
    logp, old, r, ids = (torch.cat(p)[perm] for p in (logp_parts, old_parts, r_parts, id_parts))
    out = reg_grpo_loss(logp, old, r, ids)
    torch.testing.assert_close(out.loss, torch.stack(per_group).mean())
    for gid in sizes:
        sel = ids == gid
        single = reg_grpo_loss(logp[sel], old[sel], r[sel], ids[sel])
        torch.testing.assert_close(out.predicted_advantages[sel], single.predicted_advantages)
        torch.testing.assert_close(out.target_advantages[sel], single.target_advantages)


@pytest.mark.parametrize("unbiased", [False, True])
def test_reg_grpo_gradient_matches_reference(unbiased: bool) -> None:
    gen = torch.Generator().manual_seed(1)
    groups = [4, 0, 4, 8, 0, 8, 4, 0, 8, 4, 0]
    n = len(groups)
    old = torch.randn(n, generator=gen, dtype=D)
    rewards = torch.randint(0, 3, (n,), generator=gen).to(D)
    base = old + 0.5 * torch.randn(n, generator=gen, dtype=D)
    logp_a = base.clone().requires_grad_()
    logp_b = base.clone().requires_grad_()
    out = reg_grpo_loss(logp_a, old, rewards, torch.tensor(groups), unbiased=unbiased, eps=1e-4)
    ref = _ref_reg_grpo(logp_b, old, rewards, groups, unbiased, 1e-4)
    torch.testing.assert_close(out.loss, ref)
    out.loss.backward()
    ref.backward()
    torch.testing.assert_close(logp_a.grad, logp_b.grad)


def test_reg_grpo_kl_term_matches_reference_and_gradient() -> None:
    gen = torch.Generator().manual_seed(2)
    n, t = 4, 5
    tok = torch.randn(n, t, generator=gen, dtype=D).clamp(max=-0.1).requires_grad_()
    tok_ref = tok.detach().clone().requires_grad_()
    ref_tok = tok.detach() + 0.2 * torch.randn(n, t, generator=gen, dtype=D)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0], [1, 1, 0, 0, 0]])
    old = sequence_logp(tok.detach(), mask) + 0.3 * torch.randn(n, generator=gen, dtype=D)
    rewards = _t([1, 0, 1, 1])
    ids = torch.zeros(n, dtype=torch.long)
    beta = 0.1
    out = reg_grpo_loss(
        sequence_logp(tok, mask), old, rewards, ids, beta=beta, token_logp=tok, ref_token_logp=ref_tok, mask=mask
    )
    m = mask.to(D)
    kl = ((kl_k3(tok_ref, ref_tok) * m).sum(1) / m.sum(1)).mean()
    expected = _ref_reg_grpo((tok_ref * m).sum(1), old, rewards, [0] * n, False, 1e-4) + beta * kl
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(out.kl, kl.detach())
    out.loss.backward()
    expected.backward()
    torch.testing.assert_close(tok.grad, tok_ref.grad)


def test_reg_grpo_argument_errors_and_registry() -> None:
    x = _t([0.1, 0.2])
    ids = torch.zeros(2, dtype=torch.long)
    with pytest.raises(ValueError, match="beta > 0"):
        reg_grpo_loss(x, x * 0, x, ids, beta=0.1)
    with pytest.raises(ValueError, match="integer"):
        reg_grpo_loss(x, x * 0, x, ids.to(D))
    with pytest.raises(ValueError):
        reg_grpo_loss(x, x * 0, x, ids, degenerate="ignore")


def test_sequence_logp_ignores_masked_infinities() -> None:
    tok = torch.tensor([[-1.0, -2.0, float("-inf")], [-0.5, float("nan"), -1.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 1]])
    torch.testing.assert_close(sequence_logp(tok, mask), torch.tensor([-3.0, -1.5]))


# ---------------------------------------------------------------- GRPO-CARE

ACC = [1.0, 1.0, 0.0, 1.0]
FMT = [1.0, 1.0, 1.0, 1.0]
CONF = [0.92, 0.905, 0.99, 0.97]


@pytest.mark.parametrize(
    ("margin", "bonus", "advantages"),
    [
        (0.0, [0, 0, 0, 0.5], [0.198648, 0.198648, -1.390538, 0.993241]),
        (0.01, [0.5, 0, 0, 0.5], [0.707007, 0, -1.414014, 0.707007]),
    ],
)
def test_care_worked_example(margin: float, bonus: list[float], advantages: list[float]) -> None:
    ids = torch.zeros(4, dtype=torch.long)
    got = care_bonus(_t(ACC), _t(CONF), ids, margin=margin, bonus_coefficient=0.5, confidence_upper_bound=0.95)
    torch.testing.assert_close(got, _t(bonus))
    adv = grpo_advantages(_t(ACC) + _t(FMT) + got, ids)
    torch.testing.assert_close(adv, _t(advantages), atol=1e-6, rtol=0)


def test_care_all_wrong_group_gets_no_bonus() -> None:
    got = care_bonus(torch.zeros(4, dtype=D), _t(CONF), torch.zeros(4, dtype=torch.long))
    assert torch.equal(got, torch.zeros(4, dtype=D))


def test_care_min_accuracy_uses_code_form() -> None:
    # acc == 0.1 exactly: the code's strict "> 0.1" does not select it.
    got = care_bonus(_t([0.1, 0.1]), _t([0.5, 0.5]), torch.zeros(2, dtype=torch.long))
    assert torch.equal(got, torch.zeros(2, dtype=D))


def test_care_groups_in_shuffled_batch_match_per_group_calls() -> None:
    gen = torch.Generator().manual_seed(3)
    acc = torch.cat([_t(ACC), _t([0, 0, 0]), _t([1, 0, 1, 1, 0]), _t([0.3, 0.3, 0.3])])
    conf = torch.cat([_t(CONF), _t([0.9, 0.2, 0.5]), torch.rand(5, generator=gen, dtype=D), _t([0.7, 0.8, 0.9])])
    ids = torch.tensor([7] * 4 + [2] * 3 + [40] * 5 + [1] * 3)
    perm = torch.randperm(ids.numel(), generator=gen)
    acc, conf, ids = acc[perm], conf[perm], ids[perm]
    batch = care_bonus(acc, conf, ids, margin=0.01)
    for gid in ids.unique():
        sel = ids == gid
        torch.testing.assert_close(batch[sel], care_bonus(acc[sel], conf[sel], ids[sel], margin=0.01))
    # a constant-accuracy group (0.3 each) selects every member; threshold 0.8 - 0.01 keeps 0.8 and 0.9
    sel = ids == 1
    order = torch.argsort(conf[sel])
    torch.testing.assert_close(batch[sel][order], _t([0.0, 0.15, 0.15]))


def test_answer_span_confidence_geometric_mean_over_overlapping_tokens() -> None:
    text = "<think>hm</think><answer>C. tap</answer>"
    span = answer_content_span(text)
    assert span is not None and text[span[0] : span[1]] == "C. tap"
    offsets = [(0, 0), (0, 7), (7, 9), (9, 17), (17, 24), (24, 26), (26, 28), (28, 32), (32, 40)]
    # tokens (24,26)=">C" straddles the tag end, (26,28)=". ", (28,32)="tap<" straddles the close tag
    logp = torch.log(_t([0.5, 0.5, 0.5, 0.5, 0.5, 0.99, 0.6, 0.8, 0.5]))
    got = answer_span_confidence(logp, offsets, span)
    expected = (0.99 * 0.6 * 0.8) ** (1.0 / 3.0)
    assert got.item() == pytest.approx(expected)
    assert answer_span_confidence(torch.log(_t([0.99, 0.6])), [(0, 1), (1, 2)], (0, 2)).item() == pytest.approx(
        0.7707, abs=1e-4
    )


def test_answer_span_confidence_empty_span_and_errors() -> None:
    logp = _t([-0.1, -0.2])
    assert answer_span_confidence(logp, [(0, 0), (0, 3)], (5, 9)).item() == 1.0
    with pytest.raises(ValueError):
        answer_span_confidence(logp, [(0, 3)], (0, 1))
    assert answer_content_span("no answer here <answer>open") is None
    assert answer_content_span("<answer>a</answer> then <answer>B</answer>") == (32, 33)


def test_ema_arithmetic() -> None:
    phi = [torch.ones(3, dtype=D), torch.ones(2, 2, dtype=D)]
    theta = [torch.full((3,), 2.0, dtype=D), torch.full((2, 2), 2.0, dtype=D)]
    expected = {1: 1.005, 3: 1.014925, 100: 1.394230}
    for step in range(1, 101):
        ema_update_(phi, theta, decay=0.995)
        if step in expected:
            for p in phi:
                torch.testing.assert_close(p, torch.full_like(p, expected[step]), atol=1e-6, rtol=0)
    assert torch.equal(theta[0], torch.full((3,), 2.0, dtype=D))


def test_ema_update_parameters_and_errors() -> None:
    ref = torch.nn.Linear(2, 2)
    model = torch.nn.Linear(2, 2)
    before = [p.detach().clone() for p in ref.parameters()]
    ema_update_(ref.parameters(), model.parameters(), decay=0.9)
    for b, p, q in zip(before, ref.parameters(), model.parameters()):
        torch.testing.assert_close(p.detach(), 0.9 * b + 0.1 * q.detach())
    with pytest.raises(ValueError):
        ema_update_([torch.ones(2)], [torch.ones(3)], decay=0.9)
    with pytest.raises(ValueError):
        ema_update_([torch.ones(2)], [], decay=0.9)
    with pytest.raises(ValueError):
        ema_update_([torch.ones(2)], [torch.ones(2)], decay=1.5)


def test_should_update_ema_schedule() -> None:
    assert [s for s in range(0, 31) if should_update_ema(s, 10)] == [10, 20, 30]
    with pytest.raises(ValueError):
        should_update_ema(5, 0)
