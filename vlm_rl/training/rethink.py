"""VL-Rethinker forced rethinking in the loop: continue some rollouts after a trigger and keep the
continuations that end correct in place of their first passes.

The protocol's decisions (eligibility, truncation, trigger, keep rule) are the plain functions of
`vlm_rl.rollout.rethinking`; this module generates, grades and replaces.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence

import torch

from data_pipelines.completion_format import remove_answer_blocks
from data_pipelines.schema import Sample
from vlm_rl.config import RethinkConfig
from vlm_rl.models.adapter import PromptInputs, QwenVLAdapter
from vlm_rl.rewards import RewardPipeline, RewardResult
from vlm_rl.rollout import RolloutEngine, Rollouts, SamplingParams
from vlm_rl.rollout.rethinking import choose_trigger, is_eligible, keep_continuation, maybe_truncate
from vlm_rl.training.groups import Groups
from vlm_rl.training.methods import Method, MethodContext
from vlm_rl.training.scoring import replace_rows, score



class ForcedRethinking(Method):
    """VL-Rethinker's forced rethinking (arXiv 2504.08837) of a step's eligible first passes, in one generation call."""

    def __init__(
        self, config: RethinkConfig, adapter: QwenVLAdapter, engine: RolloutEngine, rewards: RewardPipeline, sampling: SamplingParams
    ) -> None:
        self.config = config
        self.rng_key = "0:0"
        self.adapter = adapter
        self.engine = engine
        self.rewards = rewards
        self.sampling = dataclasses.replace(
            sampling, n=1, temperature=config.temperature, max_new_tokens=min(config.max_new_tokens - 1, sampling.max_new_tokens)
        )

    @classmethod
    def from_config(cls, ctx: MethodContext) -> ForcedRethinking | None:
        if not ctx.config.algo.rethink.enabled:
            return None
        method = cls(ctx.config.algo.rethink, ctx.adapter, ctx.engine, ctx.rewards, ctx.sampling)
        method.rng_key = f"{ctx.config.seed}:{ctx.process_index}"
        return method

    def shape(self, groups: Groups, round_key: str) -> tuple[Groups, dict[str, float]]:
        """Rethinks with a random stream seeded by the run's seed, the process and the sampling round."""
        rng = random.Random(f"{self.rng_key}:{round_key}")
        rollouts, rewards, stats = self.apply(groups.samples, groups.prompts, groups.rollouts, groups.rewards, rng)
        return Groups(groups.samples, groups.prompts, rollouts, rewards), stats

    def apply(
        self, samples: Sequence[Sample], prompts: Sequence[PromptInputs], rollouts: Rollouts, rewards: RewardResult, rng: random.Random
    ) -> tuple[Rollouts, RewardResult, dict[str, float]]:
        """Rollouts and rewards with kept continuations in place of their first passes, and the metrics.

        A continuation is graded on the truncated first pass with its answer blocks removed plus the
        new text, so the answer written after the trigger is the one that counts (the official code
        grades the last answer of the whole text); it is trained on as generated: the kept
        first-pass text, the trigger and the continuation.
        """
        accuracy = rewards.scores["accuracy"]
        tokenizer = self.adapter.tokenizer
        attempts: list[tuple[int, list[int], str]] = []
        for row in range(len(rollouts)):
            group = rollouts.group_ids == rollouts.group_ids[row]
            correct = bool(accuracy[row] == 1.0)
            if not is_eligible(
                ended_with_eos=not rollouts.truncated[row],
                length=len(rollouts.completion_ids[row]),
                correct=correct,
                group_accuracy=float((accuracy[group] == 1.0).float().mean()),
                config=self.config,
                rng=rng,
            ):
                continue
            prefix = maybe_truncate(rollouts.texts[row], self.config, rng) + choose_trigger(correct, rng)
            attempts.append((row, tokenizer(prefix, add_special_tokens=False)["input_ids"], prefix))
        stats = {"rethink/attempt_rate": len(attempts) / len(rollouts), "rethink/kept_rate": 0.0}
        if not attempts:
            return rollouts, rewards, stats
        continuations = self.engine.generate(
            [self._extend(prompts, rollouts, row, ids, prefix) for row, ids, prefix in attempts], self.sampling
        )
        graded = [remove_answer_blocks(prefix) + text for (_, _, prefix), text in zip(attempts, continuations.texts)]
        group_of = [int(rollouts.group_ids[row]) for row, _, _ in attempts]
        new_rewards = score(self.rewards, samples, Rollouts(continuations.completion_ids, graded, continuations.truncated, torch.tensor(group_of)))
        attempted = torch.tensor([row for row, _, _ in attempts])
        stats["rethink/first_pass_accuracy"] = float((accuracy[attempted] == 1.0).float().mean())
        stats["rethink/accuracy"] = float((new_rewards.scores["accuracy"] == 1.0).float().mean())
        kept: list[tuple[int, int]] = []
        kept_per_group: dict[int, int] = {}
        full_ids = []
        for i, (row, prefix_ids, _) in enumerate(attempts):
            new_ids = continuations.completion_ids[i]
            full_ids.append(prefix_ids + new_ids)
            group = group_of[i]
            if keep_continuation(
                new_tokens=len(new_ids),
                correct=bool(new_rewards.scores["accuracy"][i] == 1.0),
                kept_for_query=kept_per_group.get(group, 0),
                continuation_text=continuations.texts[i],
                config=self.config,
            ):
                kept_per_group[group] = kept_per_group.get(group, 0) + 1
                kept.append((row, i))
        stats["rethink/kept_rate"] = len(kept) / len(rollouts)
        texts = tokenizer.batch_decode(full_ids, skip_special_tokens=True)
        rethought = Rollouts(full_ids, texts, continuations.truncated, continuations.group_ids)
        rollouts, rewards = replace_rows(rollouts, rewards, kept, rethought, new_rewards)
        return rollouts, rewards, stats

    @staticmethod
    def _extend(prompts: Sequence[PromptInputs], rollouts: Rollouts, row: int, prefix_ids: list[int], prefix: str) -> PromptInputs:
        """The row's prompt followed by the (truncated) first pass and the trigger, as a generation prompt
        (token ids for transformers, text for engines that tokenize themselves)."""
        prompt = prompts[int(rollouts.group_ids[row])]
        extra = torch.tensor(prefix_ids, dtype=prompt.input_ids.dtype)
        source = prompt.source and dataclasses.replace(prompt.source, text=prompt.source.text + prefix)
        return dataclasses.replace(
            prompt,
            input_ids=torch.cat([prompt.input_ids, extra]),
            mm_token_type_ids=torch.cat([prompt.mm_token_type_ids, torch.zeros_like(extra, dtype=prompt.mm_token_type_ids.dtype)]),
            source=source,
        )
