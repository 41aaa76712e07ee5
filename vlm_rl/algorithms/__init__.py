"""Pure tensor math for GRPO-family RL: advantages, losses, KL estimators, aggregation, token weights.

Nothing here imports the rest of the project. Every function is registered by name; the
trainer looks it up from config with the ``get_*`` helpers below, which accept the enum member
or its plain string value. See ``docs/api.md``.
"""

from __future__ import annotations

from enum import Enum

from vlm_rl.algorithms.advantages import (
    ADVANTAGE_ESTIMATORS,
    AdvantageEstimator,
    AdvantageFn,
    GroupMoments,
    GroupStats,
    dr_grpo_advantages,
    group_moments,
    group_reward_std,
    group_stats,
    grpo_advantages,
)
from vlm_rl.algorithms.aggregation import (
    AGGREGATIONS,
    AggregationFn,
    LossAggregation,
    StepNormaliser,
    micro_batch_share,
    seq_mean_token_mean,
    seq_mean_token_sum_norm,
    token_mean,
)
from vlm_rl.algorithms.care import answer_span_confidence, care_bonus, ema_update_, should_update_ema
from vlm_rl.algorithms.csv_reward import (
    CSV_REWARD_WEIGHTS,
    CsvReward,
    completeness_score,
    csv_reward,
    round_up_only,
    single_answer_accuracy,
    temporal_iou,
)
from vlm_rl.algorithms.diversity import DiversityBaseline, description_advantages, group_diversity
from vlm_rl.algorithms.kl import KL_ESTIMATORS, KLEstimator, KLFn, kl_k1, kl_k2, kl_k3
from vlm_rl.algorithms.losses import LOSSES, Loss, LossFn, LossInputs, LossOutput, LossSettings
from vlm_rl.algorithms.policy_loss import PolicyLossOutput, clipped_surrogate, gspo
from vlm_rl.algorithms.reg_grpo import RegGRPOOutput, reg_grpo_loss, sequence_logp
from vlm_rl.algorithms.registry import Registry
from vlm_rl.algorithms.temporal import temporal_contrast_bonus
from vlm_rl.algorithms.token_weights import (
    TOKEN_WEIGHTINGS,
    TokenWeighting,
    get_token_weight_fn,
    tw_grpo_token_weights,
    tw_grpo_token_weights_chunked,
    tw_grpo_token_weights_grouped,
)


def get_advantage_fn(name: str | Enum) -> AdvantageFn:
    """Advantage estimator registered under ``name`` (``"grpo"``, ``"dr_grpo"``)."""
    return ADVANTAGE_ESTIMATORS.get(name)


def get_loss_fn(name: str | Enum) -> LossFn:
    """Loss registered under ``name`` (``"clipped_surrogate"``, ``"gspo"``, ``"reg_grpo"``)."""
    return LOSSES.get(name)


def get_kl_fn(name: str | Enum) -> KLFn:
    """KL estimator registered under ``name`` (``"k1"``, ``"k2"``, ``"k3"``)."""
    return KL_ESTIMATORS.get(name)


def get_aggregation_fn(name: str | Enum) -> AggregationFn:
    """Loss aggregation registered under ``name`` (see :class:`LossAggregation`)."""
    return AGGREGATIONS.get(name)


__all__ = [
    "ADVANTAGE_ESTIMATORS",
    "AGGREGATIONS",
    "CSV_REWARD_WEIGHTS",
    "KL_ESTIMATORS",
    "LOSSES",
    "TOKEN_WEIGHTINGS",
    "AdvantageEstimator",
    "AdvantageFn",
    "AggregationFn",
    "CsvReward",
    "DiversityBaseline",
    "GroupMoments",
    "GroupStats",
    "KLEstimator",
    "KLFn",
    "Loss",
    "LossAggregation",
    "LossFn",
    "LossInputs",
    "LossOutput",
    "LossSettings",
    "PolicyLossOutput",
    "RegGRPOOutput",
    "Registry",
    "StepNormaliser",
    "TokenWeighting",
    "answer_span_confidence",
    "care_bonus",
    "clipped_surrogate",
    "completeness_score",
    "csv_reward",
    "description_advantages",
    "dr_grpo_advantages",
    "ema_update_",
    "get_advantage_fn",
    "get_aggregation_fn",
    "get_kl_fn",
    "get_loss_fn",
    "get_token_weight_fn",
    "group_diversity",
    "group_moments",
    "group_reward_std",
    "group_stats",
    "grpo_advantages",
    "gspo",
    "kl_k1",
    "kl_k2",
    "kl_k3",
    "micro_batch_share",
    "reg_grpo_loss",
    "round_up_only",
    "seq_mean_token_mean",
    "seq_mean_token_sum_norm",
    "sequence_logp",
    "should_update_ema",
    "single_answer_accuracy",
    "temporal_contrast_bonus",
    "temporal_iou",
    "token_mean",
    "tw_grpo_token_weights",
    "tw_grpo_token_weights_chunked",
    "tw_grpo_token_weights_grouped",
]
