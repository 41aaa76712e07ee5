"""Token weights are constants of the policy losses: weights that carry a graph (as TW-GRPO's do,
built from the same forward as ``logp``) give no gradient to what they were built from, and
``logp`` gets the gradient it gets with the weights detached."""

from __future__ import annotations

import pytest
import torch

from vlm_rl.algorithms import clipped_surrogate, gspo


def _case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    logp = -torch.rand(4, 6, generator=gen, dtype=torch.float64) * 3
    old_logp = logp + 0.3 * torch.randn(4, 6, generator=gen, dtype=torch.float64)  # ratios off 1: some clip
    ref_logp = logp + 0.5 * torch.randn(4, 6, generator=gen, dtype=torch.float64)
    advantages = torch.tensor([1.0, -0.5, 0.8, -1.2], dtype=torch.float64)
    mask = torch.ones(4, 6, dtype=torch.float64)
    mask[1, 4:] = 0.0
    mask[3, 2:] = 0.0
    return logp, old_logp, ref_logp, advantages, mask


def _logp_grad(loss_fn, *, detach_weights: bool, beta: float, aggregation: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """logp's gradient and the weight leaf's gradient after one backward of ``loss_fn``."""
    base, old_logp, ref_logp, advantages, mask = _case()
    logp = base.clone().requires_grad_(True)
    scale = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)  # the weights' own leaf
    weights = 1.0 + 0.7 * torch.sigmoid(scale * logp)  # in [1, 1.7], a graph through logp and the leaf
    if detach_weights:
        weights = weights.detach()
    out = loss_fn(
        logp,
        old_logp,
        advantages,
        mask,
        token_weights=weights,
        clip_low=0.2,
        clip_high=0.28,
        ref_logp=ref_logp if beta > 0 else None,
        beta=beta,
        aggregation=aggregation,
    )
    out.loss.backward()
    return logp.grad, scale.grad


@pytest.mark.parametrize("loss_fn", [clipped_surrogate, gspo], ids=["clipped_surrogate", "gspo"])
@pytest.mark.parametrize("beta", [0.0, 0.04])
@pytest.mark.parametrize("aggregation", ["token_mean", "seq_mean_token_mean"])
def test_token_weights_with_a_graph_act_as_constants(loss_fn, beta: float, aggregation: str) -> None:
    grad, leaf_grad = _logp_grad(loss_fn, detach_weights=False, beta=beta, aggregation=aggregation)
    expected, _ = _logp_grad(loss_fn, detach_weights=True, beta=beta, aggregation=aggregation)
    assert leaf_grad is None, "no gradient may flow into what the token weights were built from"
    assert grad.abs().sum() > 0
    torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("loss_fn", [clipped_surrogate, gspo], ids=["clipped_surrogate", "gspo"])
def test_token_weights_change_the_gradient(loss_fn) -> None:
    """The weights do reach the loss (so the equality above is not between two unweighted losses)."""
    base, old_logp, _, advantages, mask = _case()
    grads = []
    for weights in (None, torch.linspace(1.0, 1.7, 6, dtype=torch.float64).expand(4, 6)):
        logp = base.clone().requires_grad_(True)
        loss_fn(logp, old_logp, advantages, mask, token_weights=weights, aggregation="token_mean").loss.backward()
        grads.append(logp.grad)
    assert not torch.allclose(grads[0], grads[1])
