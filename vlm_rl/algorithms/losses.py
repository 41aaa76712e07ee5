"""The loss protocol: every GRPO-family loss takes one micro-batch and returns its share of the step.

One registry, ``LOSSES``, holds the clipped surrogate (PPO/GRPO, arXiv 2402.03300), GSPO (arXiv
2507.18071) and Reg-GRPO (arXiv 2506.07464) behind the same call::

    fn(inputs: LossInputs, settings: LossSettings, step: StepNormaliser | None) -> LossOutput

``LossOutput.loss`` is already the micro-batch's share of the step's loss (see
:func:`~vlm_rl.algorithms.aggregation.micro_batch_share`), so the trainer backpropagates it as it
is; ``metrics`` are micro-batch means the trainer weights by ``share``; ``maxima`` reduce by max;
``final_metrics`` are read from the last update of a rollout batch (several updates with
``num_iterations > 1``), the others from the first. A new loss registers here and nothing else
changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from torch import Tensor

from vlm_rl.algorithms.aggregation import LossAggregation, StepNormaliser, micro_batch_share
from vlm_rl.algorithms.kl import KLEstimator
from vlm_rl.algorithms.policy_loss import clipped_surrogate, gspo
from vlm_rl.algorithms.reg_grpo import reg_grpo_loss, sequence_logp
from vlm_rl.algorithms.registry import Registry


class Loss(StrEnum):
    """Built-in loss names."""

    CLIPPED_SURROGATE = "clipped_surrogate"
    GSPO = "gspo"
    REG_GRPO = "reg_grpo"


@dataclass(frozen=True)
class LossInputs:
    """One micro-batch of B completions (whole groups, or replayed rows each its own group).

    ``logp`` [B, T] carries the gradient; ``old_logp`` [B, T] are the rollout policy's log-probs
    (``logp`` detached on the first, on-policy update); ``mask`` [B, T] the completion mask;
    ``advantages``, ``rewards`` and ``group_ids`` are [B]; ``ref_logp`` [B, T] the reference
    policy's log-probs (None without KL); ``token_weights`` [B, T] optional per-token weights;
    ``first_update`` is True on the first update of a rollout batch.
    """

    logp: Tensor
    old_logp: Tensor
    mask: Tensor
    advantages: Tensor
    rewards: Tensor
    group_ids: Tensor
    ref_logp: Tensor | None = None
    token_weights: Tensor | None = None
    first_update: bool = True


@dataclass(frozen=True)
class LossSettings:
    """What the config decides for every loss; ``options`` holds one loss's own settings."""

    clip_low: float = 0.2
    clip_high: float = 0.2
    clip_ratio_c: float | None = None
    beta: float = 0.0
    kl_estimator: str = KLEstimator.K3
    kl_clamp: float | None = None
    aggregation: str = LossAggregation.SEQ_MEAN_TOKEN_MEAN
    norm_const: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LossOutput:
    """A micro-batch's share of the step's loss (with grad), that share, and its metrics."""

    loss: Tensor
    share: float
    metrics: dict[str, float]
    maxima: dict[str, float] = field(default_factory=dict)
    final_metrics: dict[str, float] = field(default_factory=dict)


LossFn = Callable[[LossInputs, LossSettings, "StepNormaliser | None"], LossOutput]

LOSSES: Registry[LossFn] = Registry("loss")


def _clipped_family(objective: Callable[..., Any]) -> LossFn:
    def loss(inputs: LossInputs, settings: LossSettings, step: StepNormaliser | None) -> LossOutput:
        out = objective(
            inputs.logp,
            inputs.old_logp,
            inputs.advantages.to(inputs.logp.device),
            inputs.mask,
            clip_low=settings.clip_low,
            clip_high=settings.clip_high,
            clip_ratio_c=settings.clip_ratio_c,
            ref_logp=inputs.ref_logp,
            beta=settings.beta,
            kl_estimator=settings.kl_estimator,
            kl_clamp=settings.kl_clamp,
            aggregation=settings.aggregation,
            norm_const=settings.norm_const,
            token_weights=inputs.token_weights,
        )
        share = micro_batch_share(settings.aggregation, inputs.mask, step)
        metrics = {
            "loss": out.loss.item(),
            "kl": out.kl.item(),
            "clip_fraction": out.clip_fraction.item(),
            "clip_low_fraction": out.clip_low_fraction.item(),
            "clip_high_fraction": out.clip_high_fraction.item(),
        }
        if settings.clip_ratio_c is not None:
            metrics["dual_clip_fraction"] = out.dual_clip_fraction.item()
        maxima = {}
        weights = inputs.token_weights
        if weights is not None:
            metrics["token_weight_mean"] = float((weights * inputs.mask).sum() / inputs.mask.sum().clamp(min=1))
            maxima["token_weight_max"] = float(weights.max())
        return LossOutput(out.loss * share, share, metrics, maxima)

    loss.__doc__ = f"The loss protocol around :func:`{objective.__name__}` (micro-batch share, metrics)."
    return loss


LOSSES.register(Loss.CLIPPED_SURROGATE)(_clipped_family(clipped_surrogate))
LOSSES.register(Loss.GSPO)(_clipped_family(gspo))


@LOSSES.register(Loss.REG_GRPO)
def reg_grpo(inputs: LossInputs, settings: LossSettings, step: StepNormaliser | None) -> LossOutput:
    """Reg-GRPO on a micro-batch of whole groups.

    The regression term is a mean over groups, so the micro-batch's share is its fraction of the
    step's rows; the KL term takes its aggregation's share, by scaling beta with the ratio of the two
    shares (exactly 1 when they agree). ``settings.options``: ``unbiased_std`` (std divisor G - 1) and ``onpolicy_eps``, the variance
    floor used on the first, on-policy update of a rollout batch, where the log-ratio is
    identically 0; later updates regress against the rollout-time log-probs with no floor.
    Degenerate groups are skipped. Its regression metrics are those of the last update.
    """
    logp, mask = inputs.logp, inputs.mask
    share = 1.0 if step is None else mask.shape[0] / step.rows
    kl_share = micro_batch_share(settings.aggregation, mask, step)
    out = reg_grpo_loss(
        sequence_logp(logp, mask),
        sequence_logp(inputs.old_logp, mask),
        inputs.rewards.to(logp.device),
        inputs.group_ids.to(logp.device),
        unbiased=settings.options.get("unbiased_std", False),
        log_ratio_eps=settings.options.get("onpolicy_eps", 0.0) if inputs.first_update else 0.0,
        degenerate="skip",
        beta=settings.beta if kl_share == share else settings.beta * kl_share / share,
        token_logp=logp,
        ref_token_logp=inputs.ref_logp,
        mask=mask,
        kl_estimator=settings.kl_estimator,
        kl_clamp=settings.kl_clamp,
        aggregation=settings.aggregation,
        norm_const=settings.norm_const,
    )
    group_size = len(inputs.rewards) / max(1, int(inputs.group_ids.unique().numel()))
    final = {
        "reg_grpo/regression_loss": out.regression_loss.item(),
        "reg_grpo/log_ratio_std": out.log_ratio_std.item(),
        "reg_grpo/degenerate_group_fraction": float(out.num_degenerate_groups) * group_size / len(inputs.rewards),
    }
    return LossOutput(out.loss * share, share, {"loss": out.loss.item(), "kl": out.kl.item()}, final_metrics=final)
