"""Scoring rollouts with the reward pipeline: one RewardContext per completion."""

from __future__ import annotations

from collections.abc import Sequence

from data_pipelines.schema import Sample
from vlm_rl.rewards import RewardContext, RewardPipeline, RewardResult
from vlm_rl.rollout import Rollouts


def reward_contexts(samples: Sequence[Sample], rollouts: Rollouts) -> list[RewardContext]:
    """The context of each completion; row i answers ``samples[rollouts.group_ids[i]]``; multi-turn rollouts
    give their kept model turns as ``extra["turns"]``."""
    trajectories = rollouts.trajectories or [None] * len(rollouts)
    return [
        RewardContext(
            completion=text,
            solution=samples[g].solution,
            problem_type=samples[g].problem_type,
            options=samples[g].options,
            sample_id=samples[g].sample_id,
            extra={} if trajectory is None else {"turns": [r.turn_text for r in trajectory.results]},
        )
        for text, g, trajectory in zip(rollouts.texts, rollouts.group_ids.tolist(), trajectories)
    ]


def score(rewards: RewardPipeline, samples: Sequence[Sample], rollouts: Rollouts) -> RewardResult:
    """Every reward sub-score and the weighted total of ``rollouts``."""
    return rewards(reward_contexts(samples, rollouts))


def replace_rows(
    rollouts: Rollouts, rewards: RewardResult, pairs: Sequence[tuple[int, int]], fresh: Rollouts, fresh_rewards: RewardResult
) -> tuple[Rollouts, RewardResult]:
    """Copies of `rollouts` and `rewards` where row ``old`` takes row ``new`` of `fresh` for each ``(old, new)``."""
    completion_ids, texts, truncated = list(rollouts.completion_ids), list(rollouts.texts), list(rollouts.truncated)
    scores = {name: values.clone() for name, values in rewards.scores.items()}
    total = rewards.total.clone()
    for old, new in pairs:
        completion_ids[old], texts[old], truncated[old] = fresh.completion_ids[new], fresh.texts[new], fresh.truncated[new]
        for name in scores:
            scores[name][old] = fresh_rewards.scores[name][new]
        total[old] = fresh_rewards.total[new]
    return Rollouts(completion_ids, texts, truncated, rollouts.group_ids), RewardResult(scores, total, rewards.names)
