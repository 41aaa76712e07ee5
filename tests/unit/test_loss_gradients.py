"""clipped_surrogate: loss and gradient equal autograd through a plain per-token loop written here,
for every aggregation, clip range, KL estimator and with token weights, on off-policy inputs."""

from __future__ import annotations

import math

import pytest
import torch

from vlm_rl.algorithms import clipped_surrogate


def _kl(estimator: str, logp: torch.Tensor, ref: float) -> torch.Tensor:
    log_ratio = ref - logp  # log(pi_ref / pi)
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return 0.5 * log_ratio**2
    return torch.exp(log_ratio) - log_ratio - 1


def _reference_loss(logp, old, adv, mask, ref, weights, *, clip_low, clip_high, beta, estimator, aggregation, norm_const):
    """The clipped surrogate written out token by token; token weights scale the KL term too (TW-GRPO's code)."""
    rows, cols = logp.shape
    per_row, count_row = [], []
    for i in range(rows):
        total, count = 0.0, 0
        for t in range(cols):
            if mask[i, t] == 0:
                continue
            ratio = torch.exp(logp[i, t] - old[i, t])
            clipped = torch.clamp(ratio, 1 - clip_low, 1 + clip_high)
            term = -torch.minimum(ratio * adv[i], clipped * adv[i])
            if beta > 0:
                term = term + beta * _kl(estimator, logp[i, t], float(ref[i, t]))
            total = total + term * weights[i, t]
            count += 1
        per_row.append(total)
        count_row.append(count)
    if aggregation == "token_mean":
        return sum(per_row) / sum(count_row)
    if aggregation == "seq_mean_token_sum_norm":
        return sum(per_row) / (rows * norm_const)
    valid = [(r, c) for r, c in zip(per_row, count_row) if c > 0]
    return sum(r / c for r, c in valid) / len(valid)


@pytest.mark.parametrize("aggregation", ["seq_mean_token_mean", "token_mean", "seq_mean_token_sum_norm"])
@pytest.mark.parametrize(("clip_low", "clip_high"), [(0.2, 0.2), (0.2, 0.28), (0.05, 0.5)])
@pytest.mark.parametrize(("beta", "estimator"), [(0.0, "k3"), (0.04, "k3"), (0.1, "k1"), (0.1, "k2")])
@pytest.mark.parametrize("weighted", [False, True])
def test_clipped_surrogate_gradient_equals_plain_reference(aggregation, clip_low, clip_high, beta, estimator, weighted):
    gen = torch.Generator().manual_seed(7)
    rows, cols = 5, 6
    logp0 = -torch.rand(rows, cols, generator=gen, dtype=torch.float64) * 3
    old = logp0 + (torch.rand(rows, cols, generator=gen, dtype=torch.float64) - 0.5) * 0.8  # ratios 0.67..1.49
    ref = logp0 + (torch.rand(rows, cols, generator=gen, dtype=torch.float64) - 0.5)
    adv = torch.randn(rows, generator=gen, dtype=torch.float64)
    mask = (torch.rand(rows, cols, generator=gen) > 0.3).double()
    mask[0] = 1.0
    mask[3] = 0.0  # an empty completion
    weights = 1 + torch.rand(rows, cols, generator=gen, dtype=torch.float64) * 0.7 if weighted else torch.ones(rows, cols, dtype=torch.float64)

    logp = logp0.clone().requires_grad_(True)
    out = clipped_surrogate(
        logp, old, adv, mask, clip_low=clip_low, clip_high=clip_high, ref_logp=ref if beta > 0 else None, beta=beta,
        kl_estimator=estimator, aggregation=aggregation, norm_const=8, token_weights=weights if weighted else None,
    )
    out.loss.backward()

    ref_logp = logp0.clone().requires_grad_(True)
    expected = _reference_loss(
        ref_logp, old, adv, mask, ref, weights, clip_low=clip_low, clip_high=clip_high, beta=beta,
        estimator=estimator, aggregation=aggregation, norm_const=8,
    )
    expected.backward()
    torch.testing.assert_close(out.loss, expected)
    torch.testing.assert_close(logp.grad, ref_logp.grad)
    assert math.isfinite(out.clip_fraction.item()) and 0 < out.clip_fraction.item() < 1, "some tokens are clipped"
