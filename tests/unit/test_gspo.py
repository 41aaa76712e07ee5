"""GSPO's sequence-level ratio and the split low/high clip fractions."""

from __future__ import annotations

import torch

from vlm_rl.algorithms import clipped_surrogate, gspo

torch.manual_seed(0)


def _inputs():
    logp = (torch.randn(3, 5) * 0.1 - 1.0).requires_grad_()
    old = logp.detach() + torch.randn(3, 5) * 0.05
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], dtype=torch.float32)
    adv = torch.tensor([0.7, -1.2, 0.4])
    return logp, old, adv, mask


def _reference(logp, old, adv, mask, low, high):
    """GSPO written directly from the paper: s_i = exp(mean log ratio), clipped per sequence."""
    s = torch.exp(((logp - old) * mask).sum(1) / mask.sum(1))
    per_seq = -torch.minimum(s * adv, s.clamp(1 - low, 1 + high) * adv)
    return per_seq.mean()


def test_gspo_matches_the_sequence_level_formula_and_gradient():
    for low, high in ((3e-4, 4e-4), (0.2, 0.2), (10.0 / 11.0, 5.0)):
        logp, old, adv, mask = _inputs()
        out = gspo(logp, old, adv, mask, clip_low=min(low, 1.0), clip_high=high)
        (grad,) = torch.autograd.grad(out.loss, logp)
        ref_logp = logp.detach().clone().requires_grad_()
        ref = _reference(ref_logp, old, adv, mask, min(low, 1.0), high)
        (ref_grad,) = torch.autograd.grad(ref, ref_logp)
        assert torch.allclose(out.loss, ref, atol=1e-6)
        assert torch.allclose(grad, ref_grad, atol=1e-6)
        assert torch.all(grad[mask == 0] == 0)


def test_gspo_clips_whole_sequences_and_reports_low_and_high_separately():
    logp = torch.zeros(2, 3, requires_grad=True)
    old = torch.tensor([[-0.5, -0.5, -0.5], [0.5, 0.5, 0.5]])  # ratios e^0.5 and e^-0.5
    mask = torch.ones(2, 3)
    out = gspo(logp, old, torch.tensor([1.0, -1.0]), mask, clip_low=0.2, clip_high=0.2)
    (grad,) = torch.autograd.grad(out.loss, logp)
    assert torch.all(grad == 0), "both sequences are outside the clip range on the clipped side"
    assert out.clip_high_fraction.item() == 0.5 and out.clip_low_fraction.item() == 0.5
    assert out.clip_fraction.item() == 1.0


def test_token_level_clip_split():
    surrogate = clipped_surrogate
    logp = torch.zeros(1, 4, requires_grad=True)
    old = torch.tensor([[-0.5, 0.5, 0.0, -0.5]])
    out = surrogate(logp, old, torch.tensor([1.0]), torch.ones(1, 4), clip_low=0.2, clip_high=0.2)
    assert out.clip_high_fraction.item() == 0.5 and out.clip_low_fraction.item() == 0.0
    out = surrogate(logp, old, torch.tensor([-1.0]), torch.ones(1, 4), clip_low=0.2, clip_high=0.2)
    assert out.clip_low_fraction.item() == 0.25 and out.clip_high_fraction.item() == 0.0
