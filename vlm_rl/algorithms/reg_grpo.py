"""Reg-GRPO: regressive GRPO loss (DeepVideo-R1, Park et al., arXiv 2506.07464, Eq. 8).

Instead of a clipped surrogate, Reg-GRPO regresses the group-normalised reward advantage onto
the group-normalised sequence log-ratio ("implicit advantage"):

    A_i        = (R_i - mean_g R) / (std_g R + eps)
    rho_i      = log pi_theta(y_i | x) - log pi_old(y_i | x)          (sum over tokens)
    A_theta_i  = (rho_i - mean_g rho) / sqrt(var_g rho + log_ratio_eps)
    L          = mean over groups g of [ mean_{i in g} (A_i - A_theta_i)^2 ]  +  beta * KL(pi_theta || pi_ref)

Both standard deviations use the same divisor: ``G`` (population, the default) or ``G - 1``
(``unbiased=True``). With the population std both z-scores have unit mean square, so the
regression term of a group equals ``2 * (1 - corr(R, rho))`` and lies in ``[0, 4]``. The loss is
invariant to ``rho -> c * rho + b`` for ``c > 0`` (the temperature and partition function of the
paper's derivation cancel), so there is no clipping and no temperature hyperparameter.

Degenerate on-policy case: when ``pi_theta == pi_old`` (one gradient step per
rollout batch, or the first iteration of several), ``rho`` is identically 0, ``std_g rho = 0``
and ``A_theta`` is 0/0. A group is *degenerate* when ``sqrt(var_g rho + log_ratio_eps) <=
min_log_ratio_std``. The caller must pick how to handle it:

- ``degenerate="raise"`` (default): raise ``ValueError``. Forces an explicit choice.
- ``degenerate="skip"``: degenerate groups get ``A_theta = 0`` and are left out of the loss (no
  gradient). Meant for ``num_iterations > 1`` / several optimizer steps per rollout batch with
  ``pi_old`` snapshotted at rollout time: the first, on-policy step contributes nothing and the
  later steps, where ``pi_theta`` has moved, carry the signal. With a single on-policy step per
  rollout batch "skip" never produces a gradient.
- ``log_ratio_eps > 0`` (a variance floor; docs/algorithms.md explains the choice): ``std`` never vanishes, no group is degenerate, and on
  policy the gradient is REINFORCE-like, ``dL/drho_i = -(2/G) A_i / sqrt(log_ratio_eps)`` for one
  group: ``log_ratio_eps`` then acts as a learning-rate multiplier and must be tuned.

Groups of size 1 carry no relative signal: they get ``A = A_theta = 0`` and are left out of the
loss (never an error). If no group is counted, the loss is a zero that keeps the graph.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch
from torch import Tensor

from vlm_rl.algorithms.advantages import group_moments
from vlm_rl.algorithms.aggregation import AGGREGATIONS, LossAggregation
from vlm_rl.algorithms.kl import KL_ESTIMATORS, KLEstimator


class DegenerateMode(StrEnum):
    """What :func:`reg_grpo_loss` does with a group whose log-ratio std vanishes."""

    RAISE = "raise"
    SKIP = "skip"


@dataclass(frozen=True)
class RegGRPOOutput:
    """Result of :func:`reg_grpo_loss`.

    Attributes:
        loss: 0-d total loss carrying the gradient (``regression_loss + beta * kl``).
        regression_loss: 0-d regression term (detached).
        kl: 0-d aggregated per-token KL to the reference (detached; 0 when ``beta == 0``).
        log_ratio_std: 0-d mean over groups of size >= 2 of ``sqrt(var_g rho)`` (detached,
            without ``log_ratio_eps``); near 0 means (nearly) on-policy.
        num_degenerate_groups: 0-d count of skipped degenerate groups (long).
        target_advantages: ``[N]`` reward advantages ``A`` (detached).
        predicted_advantages: ``[N]`` implicit advantages ``A_theta`` (detached).
    """

    loss: Tensor
    regression_loss: Tensor
    kl: Tensor
    log_ratio_std: Tensor
    num_degenerate_groups: Tensor
    target_advantages: Tensor
    predicted_advantages: Tensor


def sequence_logp(token_logp: Tensor, mask: Tensor) -> Tensor:
    """Sequence log-probability ``sum_t mask_t * logp_t``: ``[N, T]`` -> ``[N]``.

    Masked positions contribute exactly 0 even when their log-prob is ``-inf`` or NaN.
    """
    if token_logp.shape != mask.shape or token_logp.dim() != 2:
        raise ValueError(
            f"token_logp {tuple(token_logp.shape)} and mask {tuple(mask.shape)} must be equal [N, T] shapes"
        )
    keep = mask.to(torch.bool)
    return torch.where(keep, token_logp, torch.zeros_like(token_logp)).sum(dim=1)


def _check_inputs(logp_seq: Tensor, old_logp_seq: Tensor, rewards: Tensor, group_ids: Tensor) -> None:
    """Raise ValueError unless all inputs are ``[N]`` and ``group_ids`` is an integer tensor."""
    if logp_seq.dim() != 1:
        raise ValueError(f"logp_seq must be 1-D [N], got shape {tuple(logp_seq.shape)}")
    for name, tensor in {"old_logp_seq": old_logp_seq, "rewards": rewards, "group_ids": group_ids}.items():
        if tensor.shape != logp_seq.shape:
            raise ValueError(f"{name} shape {tuple(tensor.shape)} must equal logp_seq shape {tuple(logp_seq.shape)}")
    if group_ids.dtype.is_floating_point or group_ids.dtype.is_complex or group_ids.dtype == torch.bool:
        raise ValueError(f"group_ids must be an integer tensor, got {group_ids.dtype}")
    if not logp_seq.dtype.is_floating_point:
        raise ValueError(f"logp_seq must be floating point, got {logp_seq.dtype}")


def reg_grpo_loss(
    logp_seq: Tensor,
    old_logp_seq: Tensor,
    rewards: Tensor,
    group_ids: Tensor,
    *,
    unbiased: bool = False,
    eps: float = 1e-4,
    log_ratio_eps: float = 0.0,
    min_log_ratio_std: float = 1e-6,
    degenerate: str | DegenerateMode = DegenerateMode.RAISE,
    beta: float = 0.0,
    token_logp: Tensor | None = None,
    ref_token_logp: Tensor | None = None,
    mask: Tensor | None = None,
    kl_estimator: str = KLEstimator.K3,
    kl_clamp: float | None = None,
    aggregation: str = LossAggregation.SEQ_MEAN_TOKEN_MEAN,
    norm_const: int | None = None,
) -> RegGRPOOutput:
    """Reg-GRPO loss for a batch of groups (formulas and degenerate handling: module docstring).

    Args:
        logp_seq: ``[N]`` summed token log-probs of each completion under pi_theta (with grad);
            see :func:`sequence_logp`.
        old_logp_seq: ``[N]`` the same under the rollout policy pi_old (detached here).
        rewards: ``[N]`` scalar rewards (detached here).
        group_ids: ``[N]`` integer group ids (arbitrary values, any order, any group sizes).
        unbiased: std divisor ``G - 1`` instead of ``G``, for both z-scores.
        eps: added to the reward std (outside the sqrt); all-equal rewards give ``A = 0`` exactly.
        log_ratio_eps: added to the log-ratio variance inside the sqrt (variance floor).
        min_log_ratio_std: a group with ``sqrt(var rho + log_ratio_eps) <= this`` is degenerate.
        degenerate: ``"raise"`` or ``"skip"`` (see the module docstring).
        beta: KL penalty coefficient, ``>= 0``; ``> 0`` needs the three token tensors below.
        token_logp: ``[N, T]`` per-token log-probs under pi_theta (with grad), for the KL.
        ref_token_logp: ``[N, T]`` per-token log-probs under the frozen reference pi_ref.
        mask: ``[N, T]`` completion mask for the KL aggregation.
        kl_estimator: registered KL estimator name (default k3).
        kl_clamp: optional clamp of ``ref_token_logp - token_logp`` inside the estimator.
        aggregation: registered aggregation for the per-token KL (default seq-mean-token-mean).
        norm_const: constant for the ``"seq_mean_token_sum_norm"`` aggregation.

    Returns:
        :class:`RegGRPOOutput`.

    Raises:
        ValueError: on bad shapes/arguments, or a degenerate group with ``degenerate="raise"``.
    """
    _check_inputs(logp_seq, old_logp_seq, rewards, group_ids)
    mode = DegenerateMode(degenerate)
    if eps < 0 or log_ratio_eps < 0 or min_log_ratio_std < 0:
        raise ValueError("eps, log_ratio_eps and min_log_ratio_std must be >= 0")
    if beta < 0:
        raise ValueError(f"beta must be >= 0, got {beta}")
    if beta > 0 and (token_logp is None or ref_token_logp is None or mask is None):
        raise ValueError("beta > 0 needs token_logp, ref_token_logp and mask for the KL term")

    ddof = 1 if unbiased else 0
    unique_ids, index = torch.unique(group_ids, return_inverse=True)
    num_groups = unique_ids.numel()

    rewards = rewards.detach().to(logp_seq.dtype)
    r = group_moments(rewards, index, num_groups, ddof)
    r_denom = r.var.sqrt() + eps
    centred = rewards - r.mean[index]
    # r_denom == 0 only for eps == 0 and all-equal rewards, where centred is exactly 0.
    target = centred / torch.where(r_denom > 0, r_denom, torch.ones_like(r_denom))[index]

    rho = logp_seq - old_logp_seq.detach()
    m = group_moments(rho, index, num_groups, ddof)
    multi = m.size >= 2
    with torch.no_grad():
        degenerate_groups = multi & ((m.var + log_ratio_eps).sqrt() <= min_log_ratio_std)
    num_degenerate = degenerate_groups.sum()
    if mode is DegenerateMode.RAISE and int(num_degenerate) > 0:
        raise ValueError(
            f"Reg-GRPO: the sequence log-ratio is (nearly) constant in {int(num_degenerate)} group(s) "
            f"(std <= {min_log_ratio_std}); this is the on-policy case pi_theta == pi_old "
            "(num_iterations == 1, or the first of several iterations). Use num_iterations > 1 with "
            "pi_old snapshotted at rollout time and degenerate='skip', or log_ratio_eps > 0 "
            "(a REINFORCE-like fallback scaled by 1/sqrt(log_ratio_eps))."
        )
    counted = multi & ~degenerate_groups
    # Sanitise the sqrt input so uncounted groups never send inf/NaN gradients back.
    safe_var = torch.where(counted, m.var + log_ratio_eps, torch.ones_like(m.var))
    predicted = (rho - m.mean[index]) / safe_var.sqrt()[index]
    predicted = torch.where(counted[index], predicted, torch.zeros_like(predicted))

    sq = (target - predicted) ** 2
    group_sq = logp_seq.new_zeros(num_groups).index_add(0, index, sq)
    group_loss = group_sq / m.size.clamp(min=1)
    num_counted = counted.sum().clamp(min=1).to(logp_seq.dtype)
    regression = torch.where(counted, group_loss, torch.zeros_like(group_loss)).sum() / num_counted

    loss = regression
    kl = logp_seq.new_zeros(())
    if beta > 0 and token_logp is not None and ref_token_logp is not None and mask is not None:
        kl_tokens = KL_ESTIMATORS.get(kl_estimator)(token_logp, ref_token_logp.detach(), clamp=kl_clamp)
        kl_term = AGGREGATIONS.get(aggregation)(kl_tokens, mask, norm_const=norm_const)
        loss = loss + beta * kl_term
        kl = kl_term.detach()

    with torch.no_grad():
        raw_std = m.var.sqrt()
        num_multi = multi.sum().clamp(min=1).to(logp_seq.dtype)
        log_ratio_std = torch.where(multi, raw_std, torch.zeros_like(raw_std)).sum() / num_multi

    return RegGRPOOutput(
        loss=loss,
        regression_loss=regression.detach(),
        kl=kl,
        log_ratio_std=log_ratio_std,
        num_degenerate_groups=num_degenerate,
        target_advantages=target.detach(),
        predicted_advantages=predicted.detach(),
    )

