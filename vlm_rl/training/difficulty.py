"""DeepVideo-R1's difficulty-aware augmentation in the loop (arXiv 2506.07464, Eq. 9 and docs/algorithms.md).

Each group's mean reward is compared with the running mean of the last W groups (Δ > 0: harder
than usual). A group whose rewards all agree (vanishing advantage) is augmented and re-rolled:
a hard one gets a partial reasoning hint from a trace generated with the answer visible (the
answer stripped from the hint), an easy one gets Gaussian noise on its frames. The re-rolled
group replaces the original in the step; the window keeps the original groups' means. The
model-free pieces are in `data_pipelines.difficulty`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch

from data_pipelines.difficulty import (
    DifficultyTracker,
    add_frame_noise,
    answer_revealing_question,
    classify,
    guidance_level,
    hint_from_trace,
    hinted_question,
    perturbation_level,
    should_augment,
)
from data_pipelines.schema import Sample
from vlm_rl.algorithms.advantages import group_reward_std
from vlm_rl.config import DifficultyConfig
from vlm_rl.models.adapter import PromptInputs
from vlm_rl.models.prompt_encoder import PromptEncoder
from vlm_rl.rewards import RewardPipeline, RewardResult
from vlm_rl.rollout import RolloutEngine, Rollouts, SamplingParams
from vlm_rl.training.checkpoint import generator_state, load_json_state, save_json_state, set_generator_state
from vlm_rl.training.groups import Groups
from vlm_rl.training.methods import Method, MethodContext
from vlm_rl.training.scoring import replace_rows, score

DIFFICULTY_FILE = "difficulty.json"
DELTA_BINS = (-1.0, -0.25, 0.25, 1.0)
"""Edges of the logged Δ histogram ``difficulty/delta_bin0..4``: Δ <= -1, (-1, -0.25], (-0.25, 0.25],
(0.25, 1] and > 1, from much easier to much harder than the recent groups."""


class DifficultyAugmentation(Method):
    """Tracks group difficulty and re-rolls vanished groups on a hinted or noised input."""

    def __init__(
        self,
        config: DifficultyConfig,
        encoder: PromptEncoder,
        engine: RolloutEngine,
        rewards: RewardPipeline,
        sampling: SamplingParams,
        seed: int,
    ) -> None:
        self.config = config
        self.encoder = encoder
        self.engine = engine
        self.rewards = rewards
        self.sampling = sampling
        self.tracker = DifficultyTracker(config.window)
        self.generator = torch.Generator().manual_seed(seed)

    @classmethod
    def from_config(cls, ctx: MethodContext) -> DifficultyAugmentation | None:
        config = ctx.config.algo.difficulty
        return cls(config, ctx.encoder, ctx.engine, ctx.rewards, ctx.sampling, ctx.seed) if config.enabled else None

    def shape(self, groups: Groups, round_key: str) -> tuple[Groups, dict[str, float]]:
        samples, prompts, rollouts, rewards, stats = self.apply(groups.samples, groups.prompts, groups.rollouts, groups.rewards)
        return Groups(samples, prompts, rollouts, rewards), stats

    def apply(
        self, samples: Sequence[Sample], prompts: Sequence[PromptInputs], rollouts: Rollouts, rewards: RewardResult
    ) -> tuple[list[Sample], list[PromptInputs], Rollouts, RewardResult, dict[str, float]]:
        """Samples, prompts, rollouts and rewards with augmented groups re-rolled, and the metrics."""
        samples, prompts = list(samples), list(prompts)
        std = group_reward_std(rewards.total, rollouts.group_ids)
        hard, easy, deltas = [], [], []
        for g in range(len(samples)):
            rows = rollouts.group_ids == g
            mean = float(rewards.total[rows].mean())
            delta = self.tracker.delta(mean)
            self.tracker.push(mean)
            if delta is None:
                continue
            deltas.append(delta)
            kind = classify(delta)
            if not should_augment(float(std[rows][0]), self.config.std_threshold) or kind == "none":
                continue
            if kind == "hard":
                hard.append((g, delta))
            elif samples[g].data_type == "video":
                easy.append((g, delta))
        hinted = self._hinted_samples(samples, hard)
        for g, delta in easy:
            level = perturbation_level(delta)
            prompts[g] = self.encoder.encode_variant(samples[g], self._noise(level))
        for g, sample in hinted.items():
            samples[g] = sample
            prompts[g] = self.encoder.encode_variant(sample)
        augmented = sorted([g for g, _ in easy] + list(hinted))
        if augmented:
            rollouts, rewards = self._reroll(samples, prompts, rollouts, rewards, augmented)
        n = len(samples)
        stats = {
            "difficulty/noised_rate": len(easy) / n,
            "difficulty/hinted_rate": len(hinted) / n,
            "difficulty/hint_unavailable_rate": (len(hard) - len(hinted)) / n,
            "difficulty/window": float(len(self.tracker)),
        }
        if deltas:
            stats["difficulty/delta_mean"] = sum(deltas) / len(deltas)
            counts = torch.bucketize(torch.tensor(deltas), torch.tensor(DELTA_BINS)).bincount(minlength=len(DELTA_BINS) + 1)
            for i, count in enumerate(counts.tolist()):
                stats[f"difficulty/delta_bin{i}"] = count / len(deltas)
        return samples, prompts, rollouts, rewards, stats

    def _noise(self, level: float):
        def transform(frames: torch.Tensor) -> torch.Tensor:
            return add_frame_noise(frames, level, sigma0=self.config.noise_sigma0, generator=self.generator)

        return transform

    def _hinted_samples(self, samples: Sequence[Sample], hard: list[tuple[int, float]]) -> dict[int, Sample]:
        """Hinted copies of the hard groups' samples; groups without a safe hint are left out."""
        if not hard:
            return {}
        revealed = [
            dataclasses.replace(samples[g], problem=answer_revealing_question(samples[g].problem, samples[g].answer))
            for g, _ in hard
        ]
        params = dataclasses.replace(self.sampling, n=self.config.guided_traces)
        traces = self.engine.generate([self.encoder.encode_variant(s) for s in revealed], params)
        trace_rewards = score(self.rewards, [samples[g] for g, _ in hard], traces).total
        hinted = {}
        for i, (g, delta) in enumerate(hard):
            rows = torch.nonzero(traces.group_ids == i).flatten()
            best = int(rows[trace_rewards[rows].argmax()])
            hint = hint_from_trace(traces.texts[best], guidance_level(delta), answer=samples[g].answer)
            if hint:
                hinted[g] = dataclasses.replace(samples[g], problem=hinted_question(samples[g].problem, hint))
        return hinted

    def _reroll(self, samples, prompts, rollouts: Rollouts, rewards: RewardResult, groups: list[int]) -> tuple[Rollouts, RewardResult]:
        """Fresh G rollouts for `groups` on their augmented prompts, in place of the originals."""
        fresh = self.engine.generate([prompts[g] for g in groups], self.sampling)
        fresh_rewards = score(self.rewards, [samples[g] for g in groups], fresh)
        pairs = [
            (old, new)
            for i, g in enumerate(groups)
            for old, new in zip(
                torch.nonzero(rollouts.group_ids == g).flatten().tolist(),
                torch.nonzero(fresh.group_ids == i).flatten().tolist(),
                strict=True,
            )
        ]
        return replace_rows(rollouts, rewards, pairs, fresh, fresh_rewards)

    def save(self, directory: Path) -> None:
        save_json_state(directory, DIFFICULTY_FILE, {"tracker": self.tracker.state_dict(), "generator": generator_state(self.generator)})

    def load(self, directory: Path) -> None:
        state = load_json_state(directory, DIFFICULTY_FILE, "algo.difficulty.enabled")
        self.tracker.load_state_dict(state["tracker"])
        set_generator_state(self.generator, state["generator"])
