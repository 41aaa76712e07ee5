"""DAPO's dynamic sampling (arXiv 2503.14476): groups whose rewards all agree carry no advantage, so
they are dropped and new prompts are sampled to refill the step, for at most a few extra rounds."""

from __future__ import annotations

from vlm_rl.algorithms.advantages import group_reward_std
from vlm_rl.training.groups import Groups
from vlm_rl.training.methods import Method, MethodContext


class DynamicSampling(Method):
    """Keeps the groups whose rewards vary; asks for up to ``refill_rounds`` extra sampling rounds."""

    def __init__(self, refill_rounds: int) -> None:
        self.refill_rounds = refill_rounds

    @classmethod
    def from_config(cls, ctx: MethodContext) -> DynamicSampling | None:
        algo = ctx.config.algo
        return cls(algo.dynamic_sampling_max_rounds) if algo.dynamic_sampling else None

    def keep(self, groups: Groups, kept: list[int]) -> list[int]:
        std = group_reward_std(groups.rewards.total, groups.rollouts.group_ids)
        varied = {int(g) for g in groups.rollouts.group_ids[std > 0].tolist()}
        return [g for g in kept if g in varied]
