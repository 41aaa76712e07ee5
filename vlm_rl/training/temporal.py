"""T-GRPO in the loop: sample completions on shuffled frames and add the temporal contrast bonus.

The bonus formula is `vlm_rl.algorithms.temporal.temporal_contrast_bonus`; this module samples
the shuffled-frame completions it compares against. Only video prompts take part.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from data_pipelines.schema import Sample
from vlm_rl.algorithms.temporal import temporal_contrast_bonus
from vlm_rl.config import TemporalConfig
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rewards import RewardPipeline, RewardResult
from vlm_rl.rollout import RolloutEngine, Rollouts, SamplingParams
from vlm_rl.training.groups import Groups
from vlm_rl.training.methods import Method, MethodContext
from vlm_rl.training.scoring import score


class TemporalContrast(Method):
    """Samples ``num_shuffled`` completions per video prompt on randomly permuted frames and scores them."""

    def __init__(
        self,
        config: TemporalConfig,
        encoder: PromptEncoder,
        engine: RolloutEngine,
        rewards: RewardPipeline,
        sampling: SamplingParams,
    ) -> None:
        self.config = config
        self.encoder = encoder
        self.engine = engine
        self.rewards = rewards
        self.sampling = SamplingParams(
            n=config.num_shuffled or max(1, sampling.n // 2),
            max_new_tokens=sampling.max_new_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
        )

    @classmethod
    def from_config(cls, ctx: MethodContext) -> TemporalContrast | None:
        config = ctx.config.algo.temporal
        return cls(config, ctx.encoder, ctx.engine, ctx.rewards, ctx.sampling) if config.enabled else None

    def shape(self, groups: Groups, round_key: str) -> tuple[Groups, dict[str, float]]:
        rewards, stats = self.add_bonus(groups.samples, groups.rollouts, groups.rewards)
        return dataclasses.replace(groups, rewards=rewards), stats

    def add_bonus(
        self, samples: Sequence[Sample], rollouts: Rollouts, rewards: RewardResult
    ) -> tuple[RewardResult, dict[str, float]]:
        """Rewards of the ordered ``rollouts`` with the bonus added (sub-score ``temporal_bonus``) and the T-GRPO metrics."""
        videos = [g for g, s in enumerate(samples) if s.data_type == "video"]
        bonus = torch.zeros(len(rollouts))
        stats: dict[str, float] = {"temporal/video_groups": float(len(videos))}
        if videos:
            prompts = [self.encoder.encode_variant(samples[g], shuffle_frames) for g in videos]
            shuffled = self.engine.generate(prompts, self.sampling)
            shuffled_groups = torch.tensor(videos)[shuffled.group_ids]
            shuffled_accuracy = score(self.rewards, [samples[g] for g in videos], shuffled).scores["accuracy"]
            accuracy = rewards.scores["accuracy"]
            bonus = temporal_contrast_bonus(
                accuracy,
                rollouts.group_ids,
                shuffled_accuracy,
                shuffled_groups,
                mu=self.config.mu,
                bonus=self.config.bonus,
                min_accuracy=self.config.min_accuracy,
            )
            in_video = torch.isin(rollouts.group_ids, shuffled_groups)
            stats["temporal/ordered_accuracy"] = float(accuracy[in_video].mean())
            stats["temporal/shuffled_accuracy"] = float(shuffled_accuracy.mean())
        stats["temporal/bonus_rate"] = float((bonus > 0).float().mean())
        return rewards.with_bonus("temporal_bonus", bonus), stats


def shuffle_frames(frames: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The frames ``[T, ...]`` in a random order (``torch.randperm``, as Video-R1)."""
    return frames[torch.randperm(frames.shape[0], generator=generator)]
