"""The groups a GRPO step trains on: K prompts, their G completions each, and the completions' rewards."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from data_pipelines.schema import Sample
from vlm_rl.models.adapter import PromptInputs
from vlm_rl.rewards import RewardResult
from vlm_rl.rollout import Rollouts


@dataclass(frozen=True)
class Groups:
    """K groups: ``samples`` and ``prompts`` [K]; ``rollouts`` and ``rewards`` one row per completion,
    ``rollouts.group_ids`` [N] indexing ``samples``."""

    samples: list[Sample]
    prompts: list[PromptInputs]
    rollouts: Rollouts
    rewards: RewardResult

    def __len__(self) -> int:
        return len(self.samples)

    def select(self, groups: Sequence[int]) -> Groups:
        """These groups (in this order), renumbered 0..len(groups)-1."""
        rows = torch.cat([torch.nonzero(self.rollouts.group_ids == g).flatten() for g in groups])
        scores = {k: v[rows] for k, v in self.rewards.scores.items()}
        return Groups(
            [self.samples[g] for g in groups],
            [self.prompts[g] for g in groups],
            self.rollouts.select_groups(list(groups)),
            RewardResult(scores, self.rewards.total[rows], self.rewards.names),
        )

    @staticmethod
    def concat(parts: Sequence[Groups]) -> Groups:
        """The groups of several sampling rounds, in order."""
        first = parts[0].rewards
        scores = {k: torch.cat([p.rewards.scores[k] for p in parts]) for k in first.scores}
        return Groups(
            [s for p in parts for s in p.samples],
            [q for p in parts for q in p.prompts],
            Rollouts.concat([p.rollouts for p in parts]),
            RewardResult(scores, torch.cat([p.rewards.total for p in parts]), first.names),
        )


@dataclass(frozen=True)
class StepBatch:
    """What a step trains on: its groups and one advantage per completion ``[N]``."""

    groups: Groups
    advantages: torch.Tensor
