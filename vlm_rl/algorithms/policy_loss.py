"""Policy-gradient losses for GRPO-family training.

``clipped_surrogate`` is the PPO clipped objective (Schulman et al., arXiv 1707.06347) as used
by GRPO (arXiv 2402.03300), with DAPO's decoupled clip range (clip-higher, arXiv 2503.14476)
and an optional KL penalty to a reference policy. ``gspo`` is the same objective with GSPO's
sequence-level importance ratio (Zheng et al., arXiv 2507.18071).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from vlm_rl.algorithms.aggregation import AGGREGATIONS, LossAggregation, token_mean
from vlm_rl.algorithms.kl import KL_ESTIMATORS, KLEstimator, kl_k3


@dataclass(frozen=True)
class PolicyLossOutput:
    """Result of a policy loss.

    Attributes:
        loss: 0-d loss tensor carrying the gradient.
        clip_fraction: 0-d, fraction of mask tokens where the clip is active (zero gradient).
        clip_low_fraction: 0-d, the part of it below ``1 - clip_low`` (negative advantages).
        clip_high_fraction: 0-d, the part of it above ``1 + clip_high`` (positive advantages).
        dual_clip_fraction: 0-d, fraction of mask tokens whose loss the dual clip bounded (0 when off).
        approx_kl: 0-d, mask-token mean of k3 between the old and current policy.
        kl: 0-d, mask-token mean of the per-token KL to the reference (0 when not computed).
        ratio_mean: 0-d, mask-token mean of the importance ratio ``pi / pi_old``.

    All fields but ``loss`` are detached diagnostics.
    """

    loss: Tensor
    clip_fraction: Tensor
    clip_low_fraction: Tensor
    clip_high_fraction: Tensor
    dual_clip_fraction: Tensor
    approx_kl: Tensor
    kl: Tensor
    ratio_mean: Tensor


def _check_shapes(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    ref_logp: Tensor | None,
    token_weights: Tensor | None,
) -> None:
    """Raise ValueError unless all [B, T] inputs match ``logp`` and ``advantages`` is [B]."""
    if logp.dim() != 2:
        raise ValueError(f"logp must be 2-D [B, T], got shape {tuple(logp.shape)}")
    named = {"old_logp": old_logp, "mask": mask, "ref_logp": ref_logp, "token_weights": token_weights}
    for name, tensor in named.items():
        if tensor is not None and tensor.shape != logp.shape:
            raise ValueError(f"{name} shape {tuple(tensor.shape)} must equal logp shape {tuple(logp.shape)}")
    if advantages.shape != logp.shape[:1]:
        raise ValueError(f"advantages must have shape [B]={tuple(logp.shape[:1])}, got {tuple(advantages.shape)}")


def clipped_surrogate(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 0.2,
    clip_high: float = 0.2,
    ref_logp: Tensor | None = None,
    beta: float = 0.0,
    kl_estimator: str = KLEstimator.K3,
    kl_clamp: float | None = None,
    aggregation: str = LossAggregation.SEQ_MEAN_TOKEN_MEAN,
    norm_const: int | None = None,
    token_weights: Tensor | None = None,
    clip_ratio_c: float | None = None,
) -> PolicyLossOutput:
    """PPO/GRPO clipped surrogate with decoupled clip range and optional KL penalty.

    Per token, with ``r = exp(logp - old_logp)`` and the completion's advantage ``A``:

        pg_t = -min(r * A, clip(r, 1 - clip_low, 1 + clip_high) * A)
        l_t  = w_t * (pg_t + beta * KL_t)

    then reduced with the named aggregation over ``mask``. ``w_t`` are optional token weights
    (TW-GRPO, arXiv 2505.24718), treated as constants and applied to the KL term too, as the
    official TW-GRPO code does; ``KL_t`` is the named estimator between ``logp`` and ``ref_logp``
    (see :mod:`vlm_rl.algorithms.kl`). ``old_logp`` and ``ref_logp`` are detached. With
    ``clip_ratio_c`` (dual clip, Ye et al. arXiv 1912.09729, as in verl) the policy term of a
    negative-advantage token is at most ``-A * clip_ratio_c``, so a huge ratio cannot blow it up.

    Single update per rollout batch: with ``old_logp = logp.detach()`` the ratio is 1 in value,
    the clip is never active and the gradient w.r.t. ``logp`` is ``-A * w * d(aggregation)``.

    Args:
        logp: ``[B, T]`` log-probs of the sampled tokens under the current policy (with grad).
        old_logp: ``[B, T]`` log-probs under the rollout policy.
        advantages: ``[B]`` one advantage per completion.
        mask: ``[B, T]`` completion mask (bool or float).
        clip_low: lower clip epsilon (ratio floor ``1 - clip_low``), in ``[0, 1]``.
        clip_high: upper clip epsilon (ratio ceiling ``1 + clip_high``), ``>= 0``.
        ref_logp: ``[B, T]`` reference-policy log-probs; required when ``beta > 0``.
        beta: KL penalty coefficient, ``>= 0``.
        kl_estimator: registered KL estimator name (``"k1"``, ``"k2"``, ``"k3"``).
        kl_clamp: optional clamp of ``ref_logp - logp`` inside the KL estimator.
        aggregation: registered loss aggregation name.
        norm_const: constant for ``"seq_mean_token_sum_norm"``.
        token_weights: optional ``[B, T]`` weights on each token's loss (policy and KL terms).
        clip_ratio_c: optional dual-clip constant ``> 1`` for negative advantages (None = off).

    Returns:
        :class:`PolicyLossOutput`.
    """
    _check_shapes(logp, old_logp, advantages, mask, ref_logp, token_weights)
    return _clipped_objective(
        logp,
        logp - old_logp.detach(),
        advantages,
        mask,
        clip_low=clip_low,
        clip_high=clip_high,
        ref_logp=ref_logp,
        beta=beta,
        kl_estimator=kl_estimator,
        kl_clamp=kl_clamp,
        aggregation=aggregation,
        norm_const=norm_const,
        token_weights=token_weights,
        clip_ratio_c=clip_ratio_c,
    )


def gspo(
    logp: Tensor,
    old_logp: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float = 3e-4,
    clip_high: float = 4e-4,
    ref_logp: Tensor | None = None,
    beta: float = 0.0,
    kl_estimator: str = KLEstimator.K3,
    kl_clamp: float | None = None,
    aggregation: str = LossAggregation.SEQ_MEAN_TOKEN_MEAN,
    norm_const: int | None = None,
    token_weights: Tensor | None = None,
    clip_ratio_c: float | None = None,
) -> PolicyLossOutput:
    """GSPO: the clipped objective on the sequence-level importance ratio (arXiv 2507.18071).

    ``s_i = exp(mean_t(logp_{i,t} - old_logp_{i,t}))`` over the completion's mask tokens, used in
    its token form ``s_{i,t} = sg[s_i] * exp(logp_{i,t} - sg[logp_{i,t}])``: equal to ``s_i`` in
    value, and with ``seq_mean_token_mean`` its gradient is exactly ``grad s_i``. Clipping acts on
    whole sequences, so the paper's clip range is tiny (3e-4 / 4e-4, the defaults here). Arguments
    and shapes as in :func:`clipped_surrogate`.
    """
    _check_shapes(logp, old_logp, advantages, mask, ref_logp, token_weights)
    m = mask.to(logp.dtype)
    diff = torch.where(mask.bool(), logp - old_logp.detach(), torch.zeros_like(logp))
    seq_log_ratio = diff.sum(-1) / m.sum(-1).clamp(min=1.0)
    log_ratio = seq_log_ratio.detach().unsqueeze(1) + logp - logp.detach()
    return _clipped_objective(
        logp,
        log_ratio,
        advantages,
        mask,
        clip_low=clip_low,
        clip_high=clip_high,
        ref_logp=ref_logp,
        beta=beta,
        kl_estimator=kl_estimator,
        kl_clamp=kl_clamp,
        aggregation=aggregation,
        norm_const=norm_const,
        token_weights=token_weights,
        clip_ratio_c=clip_ratio_c,
    )


def _clipped_objective(
    logp: Tensor,
    log_ratio: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_low: float,
    clip_high: float,
    ref_logp: Tensor | None,
    beta: float,
    kl_estimator: str,
    kl_clamp: float | None,
    aggregation: str,
    norm_const: int | None,
    token_weights: Tensor | None,
    clip_ratio_c: float | None,
) -> PolicyLossOutput:
    """The clipped objective given per-token log importance ratios ``[B, T]`` (graph attached)."""
    if not 0.0 <= clip_low <= 1.0:
        raise ValueError(f"clip_low must be in [0, 1], got {clip_low}")
    if clip_high < 0.0:
        raise ValueError(f"clip_high must be >= 0, got {clip_high}")
    if beta < 0.0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if beta > 0.0 and ref_logp is None:
        raise ValueError("beta > 0 needs ref_logp (reference-policy log-probs); pass it or set beta = 0")
    if clip_ratio_c is not None and clip_ratio_c <= 1.0:
        raise ValueError(f"clip_ratio_c (dual clip) must be > 1, got {clip_ratio_c}")
    kl_fn = KL_ESTIMATORS.get(kl_estimator)
    aggregate = AGGREGATIONS.get(aggregation)

    adv = advantages.detach().to(logp.dtype).unsqueeze(1)
    ratio = torch.exp(log_ratio)
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - clip_low, 1.0 + clip_high) * adv
    per_token = -torch.minimum(unclipped, clipped)
    dual_clipped = torch.zeros_like(per_token, dtype=torch.bool)
    if clip_ratio_c is not None:
        bound = -adv * clip_ratio_c
        dual_clipped = (adv < 0) & (per_token > bound)
        per_token = torch.where(adv < 0, torch.minimum(per_token, bound), per_token)

    kl_tokens: Tensor | None = None
    if beta > 0.0 and ref_logp is not None:
        kl_tokens = kl_fn(logp, ref_logp.detach(), clamp=kl_clamp)
        per_token = per_token + beta * kl_tokens
    if token_weights is not None:
        per_token = per_token * token_weights.detach()

    loss = aggregate(per_token, mask, norm_const=norm_const)

    with torch.no_grad():
        ratio = ratio.detach()
        clip_high_active = (adv > 0) & (ratio > 1.0 + clip_high)
        clip_low_active = (adv < 0) & (ratio < 1.0 - clip_low)
        clip_low_fraction = token_mean(clip_low_active.to(logp.dtype), mask)
        clip_high_fraction = token_mean(clip_high_active.to(logp.dtype), mask)
        dual_clip_fraction = token_mean(dual_clipped.to(logp.dtype), mask)
        approx_kl = token_mean(kl_k3(logp.detach() - log_ratio.detach(), logp.detach()), mask)
        kl = token_mean(kl_tokens.detach(), mask) if kl_tokens is not None else logp.new_zeros(())
        ratio_mean = token_mean(ratio, mask)

    return PolicyLossOutput(
        loss=loss,
        clip_fraction=clip_low_fraction + clip_high_fraction,
        clip_low_fraction=clip_low_fraction,
        clip_high_fraction=clip_high_fraction,
        dual_clip_fraction=dual_clip_fraction,
        approx_kl=approx_kl,
        kl=kl,
        ratio_mean=ratio_mean,
    )
