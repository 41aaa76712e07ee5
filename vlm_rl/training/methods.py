"""Method hooks: what a GRPO-family method does to a training step.

A method is an object with some of the hooks below (every hook of :class:`Method` does nothing by
default). The trainer builds an ordered list of the enabled methods from the config
(:func:`vlm_rl.training.method_list.build_methods`) and calls, for every step:

0. ``draw`` to change the samples of a sampling round (Syn-GRPO swaps some for synthesised ones), then
   ``rollouts`` to sample a round's completions in place of ``engine.generate`` (frame search runs
   multi-turn rollouts with a tool); the first method that returns rollouts supplies them;
1. ``shape`` after each sampling round is scored, in list order: replace groups (difficulty
   augmentation, forced rethinking) or add reward terms (CARE, temporal contrast) before any group
   statistic; returns the round's metrics, averaged over sampling rounds;
2. ``keep`` to choose which groups of the round train (dynamic sampling); ``refill_rounds`` is how
   many extra sampling rounds a method may ask for to refill what it dropped;
3. ``plan`` once advantages exist: which groups go into the loss and which extra loss micro-batches
   join them (selective replay);
4. ``after_update`` with every trained micro-batch and its first-update log-probs (replay buffer);
5. ``after_optimizer_step`` after each optimizer step (CARE's EMA reference);
6. ``save`` / ``load`` of the method's state inside the run's atomic checkpoint; ``close`` when training ends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from data_pipelines.schema import Sample
from vlm_rl.config import RunConfig
from vlm_rl.models.adapter import Batch, PromptInputs, QwenVLAdapter
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rewards import RewardPipeline
from vlm_rl.rollout import RolloutEngine, Rollouts, SamplingParams
from vlm_rl.training.groups import Groups, StepBatch
from vlm_rl.training.loss_parts import LossPart


@dataclass(frozen=True)
class MethodContext:
    """What a method may use when it is built.

    ``micro_batches(prompts, rollouts)`` gives the (Batch, row indices) loss micro-batches of whole
    groups, as the trainer collates them; ``logprobs(batch)`` the current policy's completion log-probs [B, C]
    (no gradient); ``seed`` is already offset by the process index, of ``processes``.
    """

    config: RunConfig
    policy: torch.nn.Module
    adapter: QwenVLAdapter
    encoder: PromptEncoder
    engine: RolloutEngine
    rewards: RewardPipeline
    sampling: SamplingParams
    train_samples: Sequence[Sample]
    seed: int
    process_index: int
    device: torch.device
    micro_batches: Callable
    rows_per_part: int
    logprobs: Callable[[Batch], torch.Tensor]
    processes: int


class Method:
    """Base of every method: each hook does nothing until a method overrides it."""

    refill_rounds: int = 0

    def draw(self, samples: list[Sample], step: int) -> list[Sample]:
        """The samples of a sampling round of `step`, given those the sampler drew (as many)."""
        return samples

    def rollouts(self, samples: Sequence[Sample], prompts: Sequence[PromptInputs], params: SamplingParams) -> Rollouts | None:
        """The round's completions of ``prompts`` (``params.n`` each), or None to leave sampling to the engine."""
        return None

    def shape(self, groups: Groups, round_key: str) -> tuple[Groups, dict[str, float]]:
        """Groups of one scored sampling round, changed, and this round's metrics."""
        return groups, {}

    def keep(self, groups: Groups, kept: list[int]) -> list[int]:
        """Which of ``kept`` (group indices of this round) train."""
        return kept

    def plan(self, batch: StepBatch, groups: list[int]) -> tuple[list[int], list[LossPart], dict[str, float]]:
        """Groups that go into the loss, extra loss micro-batches, and metrics."""
        return groups, [], {}

    def after_update(self, step: int, batch: StepBatch, trained: list[tuple[LossPart, torch.Tensor]]) -> dict[str, float]:
        """Called once the step's updates are done; ``trained`` pairs each micro-batch of this step's
        groups with its log-probs [B, C] from the first update."""
        return {}

    def after_optimizer_step(self, policy: torch.nn.Module, optimizer_step: int) -> None:
        """Called after each optimizer step (1-based count over the whole run)."""

    def save(self, directory: Path) -> None:
        """Write the method's state into a checkpoint directory."""

    def load(self, directory: Path) -> None:
        """Restore the method's state from a checkpoint directory."""

    def close(self) -> None:
        """Release what the method holds open (a client thread) when training ends."""
