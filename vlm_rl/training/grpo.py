"""The GRPO loop: sample groups, score them, compute group advantages, update the policy.

The trainer orchestrates. Formulas live in `vlm_rl.algorithms` (looked up by name), and what a
method does to a step lives in its own module behind the hooks of `vlm_rl.training.methods`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import TypeVar

import torch

from data_pipelines.completion_format import is_empty_thought
from vlm_rl.algorithms import StepNormaliser, get_advantage_fn, group_diversity
from vlm_rl.algorithms.advantages import group_reward_std
from vlm_rl.config import ConfigError, RunConfig
from vlm_rl.models.adapter import PromptInputs
from vlm_rl.models.loading import load_model
from vlm_rl.rewards import RewardPipeline, format_reward
from vlm_rl.rollout import Rollouts, SamplingParams
from vlm_rl.rollout.factory import make_engine
from vlm_rl.rollout.weight_sync import checkpoint_tensors
from vlm_rl.training.base import Trainer
from vlm_rl.training.groups import Groups, StepBatch
from vlm_rl.training.loss_parts import LossPart, group_micro_batches
from vlm_rl.training.method_list import build_methods
from vlm_rl.training.methods import Method, MethodContext
from vlm_rl.training.policy_update import PartResult, PolicyUpdate
from vlm_rl.training.scoring import score
from vlm_rl.training.timing import PhaseTimer
from vlm_rl.training.weight_stats import answer_weight_ratios


M = TypeVar("M", bound=Method)


class GRPOTrainer(Trainer):
    name = "grpo"

    def __init__(self, config: RunConfig) -> None:
        try:
            self.rewards = RewardPipeline(config.reward.weights, custom=config.reward.custom)
        except ValueError as err:
            raise ConfigError(f"reward: {err}") from None
        super().__init__(config)
        self.advantage_fn = get_advantage_fn(config.algo.advantage)
        self.update = PolicyUpdate(config)
        self.timer = PhaseTimer()
        with self.whole_models():
            self.ref_model = load_model(config.model, trainable=False) if config.algo.beta > 0 else None
        if self.ref_model is not None:
            self.ref_model.to(self.accelerator.device)
        r, rank = config.rollout, self.accelerator.process_index
        self.engine = make_engine(r, self.policy, self.adapter, config.model.path, seed=config.seed + rank, world_size=self.accelerator.num_processes)
        self._sync_engine_weights()
        self.sampling = SamplingParams(n=r.num_generations, max_new_tokens=r.max_new_tokens, temperature=r.temperature, top_p=r.top_p, top_k=r.top_k)
        context = MethodContext(
            config, self.policy, self.adapter, self.encoder, self.engine, self.rewards, self.sampling, self.train_samples,
            seed=config.seed + rank, process_index=rank, device=self.accelerator.device, micro_batches=self._micro_batches,
            rows_per_part=config.trainer.micro_batch_prompts * self.sampling.n,
            logprobs=lambda batch: self.update.frozen_logps(self.model, batch), processes=self.accelerator.num_processes,
        )
        with self.whole_models():
            self.methods = build_methods(context)
        if self.resumed_from is not None:
            for method in self.methods:
                method.load(self.resumed_from)

    def method(self, kind: type[M]) -> M:
        """The enabled method of class ``kind``."""
        found = [m for m in self.methods if isinstance(m, kind)]
        if not found:
            raise LookupError(f"{kind.__name__} is not enabled in this run")
        return found[0]

    def close(self) -> None:
        for method in self.methods:
            method.close()

    def write_state(self, checkpoint) -> None:
        for method in self.methods:
            method.save(checkpoint)

    def optimizer_steps(self) -> int:
        return self.config.trainer.steps * self.config.algo.num_iterations

    def step(self, step: int) -> dict[str, float]:
        groups, stats = self._collect_groups(self.config.trainer.prompts_per_step, step)
        advantages = self.advantage_fn(groups.rewards.total, groups.rollouts.group_ids, std_mode=self.config.algo.std_mode)
        batch = StepBatch(groups, advantages)
        trained = list(range(len(groups)))
        extra: list[LossPart] = []
        for method in self.methods:
            trained, parts, plan_stats = method.plan(batch, trained)
            extra += parts
            stats.update(plan_stats)
        parts = [
            LossPart(chunk, advantages[rows], groups.rollouts.group_ids[rows], groups.rewards.total[rows], rows)
            for chunk, rows in self._micro_batches(groups.prompts, groups.rollouts, trained)
        ] + extra
        first_logps = self._update(step, parts, stats, groups.rollouts)
        for method in self.methods:
            stats.update(method.after_update(step, batch, first_logps))
        stats.update(self.timer.pop())
        stats["advantage_mean"] = float(advantages.mean())
        stats["advantage_std"] = float(advantages.std()) if len(advantages) > 1 else 0.0
        return self._metrics(step, groups, stats)

    def _update(
        self, step: int, parts: list[LossPart], stats: dict[str, float], rollouts: Rollouts
    ) -> list[tuple[LossPart, torch.Tensor]]:
        """``algo.num_iterations`` optimizer steps over the loss micro-batches; returns each of this step's
        own micro-batches with its log-probs from the first update. With token weighting, ``tw/answer_weight_ratio``
        is the mean over this step's completions of :func:`answer_weight_ratios`."""
        iterations = self.config.algo.num_iterations
        with self.timer("logprob_passes"):
            # replayed parts carry their rollout-time log-probs; this step's parts need a snapshot only
            # when the policy is updated more than once on them
            old_logps = [
                part.old_logps if part.old_logps is not None or iterations == 1 else self.update.frozen_logps(self.model, part.batch)
                for part in parts
            ]
            ref_logps = [self.update.frozen_logps(self.ref_model, part.batch) for part in parts] if self.ref_model is not None else None
        norm = self._step_normaliser(parts)
        first_logps: list[tuple[LossPart, torch.Tensor]] = []
        answer_ratios: list[float] = []
        for iteration in range(iterations):
            for i, part in enumerate(parts):
                with self.micro_batch(last=i == len(parts) - 1):
                    with self.timer("forward"):
                        old = old_logps[i] if iteration > 0 or part.old_logps is not None else None
                        ref = ref_logps[i] if ref_logps is not None else None
                        result = self.update(self.model, part, iteration == 0, old, ref, norm)
                    with self.timer("backward"):
                        self.accelerator.backward(result.out.loss)
                out = result.out
                if iteration == 0:
                    if part.rows is not None:
                        first_logps.append((part, result.logp.detach().cpu()))
                        if result.weights is not None:
                            answer_ratios += self._answer_weight_ratios(result, part.rows, rollouts)
                    _accumulate(stats, "entropy", float((result.entropy * result.mask).sum()) / norm.tokens)
                    for key, value in out.metrics.items():
                        _accumulate(stats, key, value * out.share)
                    for key, value in out.maxima.items():
                        stats[key] = max(stats.get(key, value), value)
                if iteration == iterations - 1:
                    for key, value in out.final_metrics.items():
                        _accumulate(stats, key, value * out.share)
            with self.timer("optimizer"):
                stats["grad_norm"] = self.clip_and_step()
                self._sync_engine_weights()
            for method in self.methods:
                method.after_optimizer_step(self.policy, (step - 1) * iterations + iteration + 1)
        if answer_ratios:
            stats["tw/answer_weight_ratio"] = sum(answer_ratios) / len(answer_ratios)
        return first_logps

    def _answer_weight_ratios(self, result: PartResult, rows: torch.Tensor, rollouts: Rollouts) -> list[float]:
        decode = functools.partial(self.adapter.tokenizer.decode, skip_special_tokens=True)  # as the rollout texts
        index = rows.tolist()
        return answer_weight_ratios(
            result.weights.detach().cpu(), result.mask.cpu(), [rollouts.texts[i] for i in index],
            [rollouts.completion_ids[i] for i in index], decode,
        )

    def _step_normaliser(self, parts: Sequence[LossPart]) -> StepNormaliser:
        """Rows, sequences and tokens of the whole step over all processes, per process (gradients are averaged)."""
        counts = StepNormaliser.count([p.batch.completion_mask for p in parts])
        processes = self.accelerator.num_processes
        if processes > 1:
            counts = self.accelerator.reduce(counts.to(self.accelerator.device), reduction="sum").cpu()
        rows, sequences, tokens = (max(1, int(c)) for c in counts)
        if processes == 1:
            return StepNormaliser(rows=rows, sequences=sequences, tokens=tokens)
        return StepNormaliser(rows=rows / processes, sequences=sequences / processes, tokens=tokens / processes)

    def _collect_groups(self, n_prompts: int, step: int) -> tuple[Groups, dict[str, float]]:
        """Sample, score and shape groups until `n_prompts` are kept or no method asks for another round.

        Returns the kept groups and metrics: dropped groups, extra sampling rounds and the shaping
        metrics averaged over rounds.
        """
        max_rounds = max((method.refill_rounds for method in self.methods), default=0)
        kept: list[Groups] = []
        round_stats: list[dict[str, float]] = []
        n_kept, dropped, rounds = 0, 0, 0
        while True:
            samples = self.sampler.take(n_prompts - n_kept)
            for method in self.methods:
                samples = method.draw(samples, step)
            prompts = [self.encoder.encode(s) for s in samples]
            with self.timer("generation"):
                rollouts = next((r for m in self.methods if (r := m.rollouts(samples, prompts, self.sampling)) is not None), None)
                if rollouts is None:
                    rollouts = self.engine.generate(prompts, self.sampling)
            with self.timer("rewards"):
                groups = Groups(samples, prompts, rollouts, score(self.rewards, samples, rollouts))
            shaping: dict[str, float] = {}
            for method in self.methods:
                groups, method_stats = method.shape(groups, f"{step}:{rounds}")
                shaping.update(method_stats)
            round_stats.append(shaping)
            keep = list(range(len(groups)))
            for method in self.methods:
                keep = method.keep(groups, keep)
            dropped += len(groups) - len(keep)
            if keep:
                kept.append(groups.select(keep))
                n_kept += len(keep)
            if n_kept == n_prompts or rounds == max_rounds:
                break
            rounds += 1
        stats = {"dropped_groups": float(dropped), "refill_rounds": float(rounds)}
        for key in {k for values in round_stats for k in values}:
            values = [r[key] for r in round_stats if key in r]
            stats[key] = sum(values) / len(values)
        # every group agreed in every round: train on the last round (its advantages are 0)
        return Groups.concat(kept) if kept else groups, stats

    def _micro_batches(self, prompts: Sequence[PromptInputs], rollouts: Rollouts, groups: Sequence[int] | None = None):
        cfg = self.config
        return group_micro_batches(
            self.adapter, prompts, rollouts, group_size=self.sampling.n, groups_per_batch=cfg.trainer.micro_batch_prompts,
            mask_truncated=cfg.algo.mask_truncated, groups=groups,
        )

    def _sync_engine_weights(self) -> None:
        """Give the rollout engine the policy's weights: every process its own engine, or the main process
        the shared server (under ZeRO-3 the others walk the weights too: the gathers are collective)."""
        if self.config.rollout.engine != "vllm-server" or self.is_main:
            self.engine.sync_weights(self.policy)
        elif self.zero3:
            for _ in checkpoint_tensors(self.policy):
                pass
        self.accelerator.wait_for_everyone()

    def _metrics(self, step: int, groups: Groups, stats: dict[str, float]) -> dict[str, float]:
        rollouts, rewards = groups.rollouts, groups.rewards
        lengths = torch.tensor(rollouts.lengths, dtype=torch.float32)
        std = group_reward_std(rewards.total, rollouts.group_ids)
        metrics = {
            "reward": float(rewards.total.mean()),
            "reward_std": float(std.mean()),
            "zero_std_groups": float((std == 0).float().mean()),
            "completion_length": float(lengths.mean()),
            "truncated": sum(rollouts.truncated) / len(rollouts),
            **{f"reward/{k}": float(v.mean()) for k, v in rewards.scores.items()},
            **stats,
        }
        metrics["format_rate"] = sum(format_reward(t) for t in rollouts.texts) / len(rollouts)
        skipped = torch.tensor([is_empty_thought(t) for t in rollouts.texts])
        metrics["skip_ratio"] = float(skipped.float().mean())
        by_kind = [("no_think", skipped), ("think", ~skipped)]
        if "accuracy" in rewards.scores:
            metrics["accuracy"] = float(rewards.scores["accuracy"].mean())
            metrics["accuracy_variance"] = float(group_diversity(rewards.scores["accuracy"].double(), rollouts.group_ids).mean())
            correct = rewards.scores["accuracy"] == 1.0
            by_kind += [("correct", correct), ("incorrect", ~correct)]
        for name, rows in by_kind:
            if rows.any():
                metrics[f"completion_length/{name}"] = float(lengths[rows].mean())
        every = self.config.trainer.sample_every
        if every and step % every == 0:
            rows = torch.nonzero(rollouts.group_ids == 0).flatten().tolist()
            scores = rewards.scores.items()
            self.logger.log_samples(
                step,
                [
                    {"sample": groups.samples[0].origin, "completion": rollouts.texts[i], "reward": float(rewards.total[i]), **{k: float(v[i]) for k, v in scores}}
                    for i in rows
                ],
            )
        return metrics


def _accumulate(stats: dict[str, float], key: str, value: float) -> None:
    stats[key] = stats.get(key, 0.0) + value
