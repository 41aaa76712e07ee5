"""The loss protocol: micro-batch shares add up to the whole batch for every loss and aggregation,
an aggregation without a normaliser unit is refused, and the dual clip bounds negative-advantage terms."""

from __future__ import annotations

import pytest
import torch

from vlm_rl.algorithms import (
    AGGREGATIONS,
    LOSSES,
    LossInputs,
    LossSettings,
    StepNormaliser,
    clipped_surrogate,
    micro_batch_share,
)

G, GROUPS, T = 4, 3, 7


def _batch(seed: int = 0, empty_row: bool = True):
    gen = torch.Generator().manual_seed(seed)
    n = G * GROUPS
    logp0 = -torch.rand(n, T, generator=gen, dtype=torch.float64) * 2
    old = logp0 + (torch.rand(n, T, generator=gen, dtype=torch.float64) - 0.5) * 0.6
    ref = logp0 + (torch.rand(n, T, generator=gen, dtype=torch.float64) - 0.5) * 0.4
    mask = (torch.rand(n, T, generator=gen) > 0.3).double()
    mask[:, 0] = 1.0
    if empty_row:
        mask[5] = 0.0  # a completion masked out entirely (overlong masking)
    rewards = torch.rand(n, generator=gen, dtype=torch.float64)
    group_ids = torch.arange(GROUPS).repeat_interleave(G)
    advantages = torch.randn(n, generator=gen, dtype=torch.float64)
    return logp0, old, ref, mask, rewards, group_ids, advantages


def _inputs(logp, old, ref, mask, rewards, group_ids, advantages, rows, first):
    return LossInputs(
        logp=logp[rows], old_logp=old[rows], mask=mask[rows], advantages=advantages[rows], rewards=rewards[rows],
        group_ids=group_ids[rows], ref_logp=ref[rows], first_update=first,
    )


@pytest.mark.parametrize("aggregation", ["seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm"])
@pytest.mark.parametrize("loss", ["clipped_surrogate", "gspo", "reg_grpo"])
def test_micro_batches_add_up_to_the_whole_batch(loss, aggregation):
    logp0, old, ref, mask, rewards, group_ids, advantages = _batch()
    settings = LossSettings(beta=0.05, aggregation=aggregation, norm_const=T, options={"onpolicy_eps": 1.0}, clip_low=0.1, clip_high=0.1)
    fn = LOSSES.get(loss)
    everything = torch.arange(G * GROUPS)

    whole = logp0.clone().requires_grad_(True)
    full = fn(_inputs(whole, old, ref, mask, rewards, group_ids, advantages, everything, first=False), settings, None)
    full.loss.backward()
    assert full.share == 1.0

    split = logp0.clone().requires_grad_(True)
    step = StepNormaliser(**dict(zip(("rows", "sequences", "tokens"), StepNormaliser.count([mask]).tolist())))
    chunks = [torch.arange(g * G, (g + 1) * G) for g in range(GROUPS)]  # one group per micro-batch
    outs = [fn(_inputs(split, old, ref, mask, rewards, group_ids, advantages, rows, first=False), settings, step) for rows in chunks]
    total = sum(out.loss for out in outs)
    total.backward()

    torch.testing.assert_close(total, full.loss)
    torch.testing.assert_close(split.grad, whole.grad)
    if loss != "reg_grpo":  # Reg-GRPO's logged loss is its micro-batch value (KL weighted by rows)
        logged = sum(out.metrics["loss"] * out.share for out in outs)
        assert logged == pytest.approx(full.metrics["loss"], rel=1e-9)
    assert sum(out.share for out in outs) == pytest.approx(1.0)
    assert split.grad.abs().sum() > 0


def test_shares_weight_by_the_unit_each_aggregation_declares():
    mask = torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    step = StepNormaliser(rows=6, sequences=4, tokens=10)
    assert micro_batch_share("token_mean", mask, step) == pytest.approx(3 / 10)
    assert micro_batch_share("seq_mean_token_mean", mask, step) == pytest.approx(2 / 4)
    assert micro_batch_share("seq_mean_token_sum_norm", mask, step) == pytest.approx(3 / 6)
    assert micro_batch_share("token_mean", mask, None) == 1.0


def test_an_aggregation_registered_without_a_unit_is_refused(monkeypatch):
    name = "test_unitless_sum"
    monkeypatch.setitem(AGGREGATIONS._entries, name, lambda loss, mask, *, norm_const=None: (loss * mask).sum())
    with pytest.raises(KeyError, match="without a normaliser unit"):
        micro_batch_share(name, torch.ones(2, 2), StepNormaliser(rows=2, sequences=2, tokens=4))


def test_dual_clip_bounds_negative_advantage_terms():
    logp = torch.tensor([[0.0, 0.0]], requires_grad=True)
    old = torch.tensor([[-5.0, -0.1]])  # ratios e^5 ~ 148 and e^0.1 ~ 1.1
    adv, mask = torch.tensor([-1.0]), torch.ones(1, 2)
    plain = clipped_surrogate(logp, old, adv, mask, aggregation="token_mean")
    dual = clipped_surrogate(logp, old, adv, mask, aggregation="token_mean", clip_ratio_c=3.0)
    dual.loss.backward()
    expected = (3.0 + torch.exp(torch.tensor(0.1))) / 2  # the huge ratio's term is capped at -A * c = 3
    torch.testing.assert_close(dual.loss.detach(), expected)
    assert plain.loss.item() > 70
    assert dual.dual_clip_fraction.item() == 0.5
    assert logp.grad[0, 0] == 0 and logp.grad[0, 1] != 0, "no gradient through the capped token"
    positive = clipped_surrogate(logp.detach(), old, -adv, mask, aggregation="token_mean", clip_ratio_c=3.0)
    torch.testing.assert_close(positive.loss, clipped_surrogate(logp.detach(), old, -adv, mask, aggregation="token_mean").loss)
    with pytest.raises(ValueError, match="must be > 1"):
        clipped_surrogate(logp, old, adv, mask, clip_ratio_c=0.5)


@pytest.mark.parametrize("aggregation", ["seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm"])
def test_processes_averaging_gradients_get_the_global_mean(aggregation):
    """Two processes with unequal token counts: each divides by the global count per process, DDP averages the
    gradients, and the result is the whole batch's gradient (not the mean of the two processes' means)."""
    logp0, old, ref, mask, rewards, group_ids, advantages = _batch(seed=3)
    mask[:G, 3:] = 0.0  # the first process's completions are much shorter
    settings = LossSettings(aggregation=aggregation, norm_const=T)
    fn = LOSSES.get("clipped_surrogate")
    whole = logp0.clone().requires_grad_(True)
    fn(_inputs(whole, old, ref, mask, rewards, group_ids, advantages, torch.arange(G * GROUPS), False), settings, None).loss.backward()

    processes = [torch.arange(0, G), torch.arange(G, G * GROUPS)]
    counts = StepNormaliser.count([mask])  # what the all-reduce of both processes' counts gives
    step = StepNormaliser(*(float(c) / len(processes) for c in counts))
    grads = []
    for rows in processes:
        local = logp0.clone().requires_grad_(True)
        fn(_inputs(local, old, ref, mask, rewards, group_ids, advantages, rows, False), settings, step).loss.backward()
        grads.append(local.grad)
    torch.testing.assert_close(sum(grads) / len(processes), whole.grad)
