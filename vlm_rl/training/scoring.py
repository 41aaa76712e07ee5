"""Scoring rollouts with the reward pipeline: one RewardContext per completion."""

from __future__ import annotations

from collections.abc import Sequence

from data_pipelines.schema import Sample
from vlm_rl.rewards import RewardContext, RewardPipeline, RewardResult
from vlm_rl.rollout import Rollouts


def reward_contexts(samples: Sequence[Sample], rollouts: Rollouts) -> list[RewardContext]:
    """The context of each completion; row i answers ``samples[rollouts.group_ids[i]]``."""
    return [
        RewardContext(
            completion=text,
            solution=samples[g].solution,
            problem_type=samples[g].problem_type,
            options=samples[g].options,
            sample_id=samples[g].sample_id,
        )
        for text, g in zip(rollouts.texts, rollouts.group_ids.tolist())
    ]


def score(rewards: RewardPipeline, samples: Sequence[Sample], rollouts: Rollouts) -> RewardResult:
    """Every reward sub-score and the weighted total of ``rollouts``."""
    return rewards(reward_contexts(samples, rollouts))
