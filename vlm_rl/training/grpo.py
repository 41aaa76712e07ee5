"""The GRPO loop: sample groups, score them, compute group advantages, update the policy.

The trainer orchestrates; every formula lives in `vlm_rl.algorithms` and is looked up by name.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import torch

from data_pipelines.schema import Sample
from data_pipelines.thought_dropout import is_empty_thought
from vlm_rl.algorithms import (
    REGRESSION_LOSSES,
    get_advantage_fn,
    get_policy_loss_fn,
    get_reg_loss_fn,
    get_token_weight_fn,
    sequence_logp,
)
from vlm_rl.algorithms.advantages import group_reward_std
from vlm_rl.config import ConfigError, RunConfig
from vlm_rl.models.adapter import PromptInputs
from vlm_rl.models.loading import load_model
from vlm_rl.models.logprobs import completion_logprobs
from vlm_rl.rewards import RewardPipeline, RewardResult, format_reward
from vlm_rl.rollout import Rollouts, SamplingParams
from vlm_rl.rollout.factory import make_engine
from vlm_rl.training.base import Trainer
from vlm_rl.training.care import ConsistencyReference
from vlm_rl.training.difficulty import DifficultyAugmentation
from vlm_rl.training.loss_parts import LossPart
from vlm_rl.training.rethink import ForcedRethinking
from vlm_rl.training.replay import ReplayBuffer, SelectiveReplay, effective_ratio
from vlm_rl.training.scoring import score
from vlm_rl.training.temporal import TemporalContrast
from vlm_rl.training.timing import PhaseTimer


class GRPOTrainer(Trainer):
    name = "grpo"

    def __init__(self, config: RunConfig) -> None:
        try:
            self.rewards = RewardPipeline(config.reward.weights, custom=config.reward.custom)
        except ValueError as err:
            raise ConfigError(f"reward: {err}") from None
        super().__init__(config)
        algo = config.algo
        self.advantage_fn = get_advantage_fn(algo.advantage)
        regression = algo.policy_loss in REGRESSION_LOSSES
        self.reg_loss_fn = get_reg_loss_fn(algo.policy_loss) if regression else None
        self.policy_loss_fn = None if regression else get_policy_loss_fn(algo.policy_loss)
        with self.whole_models():
            self.ref_model = load_model(config.model, trainable=False) if algo.beta > 0 else None
        if self.ref_model is not None:
            self.ref_model.to(self.accelerator.device)
        self.shared_prefix = config.model.shared_prefix
        self.timer = PhaseTimer()
        self.token_weight_fn = get_token_weight_fn(algo.token_weighting) if algo.token_weighting != "none" else None
        seed = config.seed + self.accelerator.process_index
        self.engine = make_engine(
            config.rollout, self.policy, self.adapter, config.model.path, seed=seed, world_size=self.accelerator.num_processes
        )
        self._sync_engine_weights()
        r = config.rollout
        self.sampling = SamplingParams(
            n=r.num_generations, max_new_tokens=r.max_new_tokens, temperature=r.temperature, top_p=r.top_p, top_k=r.top_k
        )
        with self.whole_models():
            self.care = (
                ConsistencyReference(self.policy, algo.care, self.adapter.tokenizer, shared_prefix=self.shared_prefix)
                if algo.care.enabled
                else None
            )
        if self.care is not None:
            self.care.model.to(self.accelerator.device)
        self.temporal = (
            TemporalContrast(algo.temporal, self.encoder, self.engine, self.rewards, self.sampling) if algo.temporal.enabled else None
        )
        self.difficulty = (
            DifficultyAugmentation(algo.difficulty, self.encoder, self.engine, self.rewards, self.sampling, seed)
            if algo.difficulty.enabled
            else None
        )
        self.rethink = (
            ForcedRethinking(algo.rethink, self.adapter, self.engine, self.rewards, self.sampling) if algo.rethink.enabled else None
        )
        self.replay = None
        if algo.replay.enabled:
            capacity = algo.replay.capacity or max(1, config.trainer.prompts_per_step * self.sampling.n // 2)
            self.replay = SelectiveReplay(ReplayBuffer(capacity, alpha=algo.replay.alpha), self.train_samples, self.adapter, seed)
        # method state saved in every checkpoint beside the model: EMA reference, replay buffer, difficulty window
        self.stateful = [part for part in (self.care, self.replay, self.difficulty) if part is not None]
        if self.resumed_from is not None:
            for part in self.stateful:
                part.load(self.resumed_from)

    def write_state(self, checkpoint: Path) -> None:
        for part in self.stateful:
            part.save(checkpoint)

    def optimizer_steps(self) -> int:
        return self.config.trainer.steps * self.config.algo.num_iterations

    def step(self, step: int) -> dict[str, float]:
        cfg = self.config
        samples, prompts, rollouts, rewards, stats = self._collect_groups(cfg.trainer.prompts_per_step, step)
        advantages = self.advantage_fn(
            rewards.total, rollouts.group_ids, scale_by_std=cfg.algo.scale_by_std, std_mode=cfg.algo.std_mode
        )
        parts = self._loss_parts(prompts, rollouts, rewards, advantages, stats)
        iterations = cfg.algo.num_iterations
        with self.timer("logprob_passes"):
            # replayed parts carry their rollout-time log-probs; this step's parts need a snapshot only
            # when the policy is updated more than once on them
            old_logps = [
                part.old_logps if part.old_logps is not None or iterations == 1 else self._frozen_logps(self.model, part.batch)
                for part in parts
            ]
            ref_logps = [self._frozen_logps(self.ref_model, part.batch) for part in parts] if self.ref_model is not None else None
        totals = {"rows": sum(len(p.advantages) for p in parts), "tokens": max(1, int(sum(p.batch.completion_mask.sum() for p in parts)))}
        fresh_logps: list[torch.Tensor] = []
        for iteration in range(iterations):
            for i, part in enumerate(parts):
                with self.micro_batch(last=i == len(parts) - 1):
                    with self.timer("forward"):
                        old = old_logps[i] if iteration > 0 or part.old_logps is not None else None
                        ref = ref_logps[i] if ref_logps is not None else None
                        loss, weight, values, logp, entropy, mask = self._part_loss(part, iteration, old, ref, totals)
                    with self.timer("backward"):
                        self.accelerator.backward(loss * weight)
                if iteration == 0 and part.rows is not None:
                    fresh_logps.append(logp.detach().cpu())
                if "token_weight_max" in values:
                    stats["token_weight_max"] = max(stats.get("token_weight_max", 1.0), values.pop("token_weight_max"))
                if iteration == 0:
                    _accumulate(stats, "entropy", float((entropy * mask).sum()) / totals["tokens"])
                for key, value in values.items():
                    if iteration == 0 or (iteration == iterations - 1 and key.startswith("reg_grpo/")):
                        _accumulate(stats, key, value * weight)
            with self.timer("optimizer"):
                stats["grad_norm"] = self._optimizer_step()
            if self.care is not None:
                self.care.after_optimizer_step(self.policy, (step - 1) * iterations + iteration + 1)
        if self.replay is not None:
            current = [part for part in parts if part.rows is not None]
            stats["replay/added"] = float(self.replay.remember(step, samples, rollouts, advantages, current, fresh_logps))
            stats["replay/buffer_size"] = float(len(self.replay.buffer))
        stats.update(self.timer.pop())
        stats["advantage_mean"] = float(advantages.mean())
        stats["advantage_std"] = float(advantages.std()) if len(advantages) > 1 else 0.0
        return self._metrics(step, samples, rollouts, rewards, stats)

    def _loss_parts(self, prompts, rollouts: Rollouts, rewards: RewardResult, advantages: torch.Tensor, stats) -> list[LossPart]:
        """The step's loss micro-batches: whole groups of this step's rollouts, plus replayed samples.

        With selective sample replay, groups whose advantages all vanished are replaced by as many
        samples drawn from the replay buffer (when it holds any); otherwise every group trains.
        """
        groups = list(range(int(rollouts.group_ids.max()) + 1))
        replayed: list[LossPart] = []
        if self.replay is not None:
            vanished = [g for g in groups if bool((advantages[rollouts.group_ids == g] == 0).all())]
            rows = sum(int((rollouts.group_ids == g).sum()) for g in vanished)
            replayed = self.replay.parts(rows, self.encoder, self.config.trainer.micro_batch_prompts * self.sampling.n)
            if replayed:
                groups = [g for g in groups if g not in vanished]
            stats["replay/effective_ratio"] = effective_ratio(advantages)
            stats["replay/replayed_fraction"] = sum(len(p.advantages) for p in replayed) / max(
                1, sum(len(p.advantages) for p in replayed) + len(groups) * self.sampling.n
            )
        return [
            LossPart(batch, advantages[rows], rollouts.group_ids[rows], rewards.total[rows], rows)
            for batch, rows in self._micro_batches(prompts, rollouts, groups)
        ] + replayed

    def _part_loss(self, part: LossPart, iteration: int, old: torch.Tensor | None, ref: torch.Tensor | None, totals):
        """Loss of one micro-batch, its share of the step's loss, its metrics, and the forward's log-probs,
        entropies and mask. ``old`` None means on-policy (the ratio is taken against ``logp`` detached)."""
        logp, entropy, vocab = completion_logprobs(
            self.model,
            part.batch,
            with_entropy=iteration == 0,
            with_vocab=self.token_weight_fn is not None,
            shared_prefix=self.shared_prefix,
        )
        mask = part.batch.completion_mask.to(logp.device)
        old = logp.detach() if old is None else old.to(logp.device)
        if self.reg_loss_fn is not None:
            loss, values = self._regression_loss(logp, old, ref, mask, part, iteration)
            return loss, len(part.advantages) / totals["rows"], values, logp, entropy, mask
        weights = self._token_weights(vocab, mask, part.group_ids)
        loss, values = self._policy_loss(logp, old, ref, mask, part.advantages, weights)
        return loss, self._chunk_weight(mask, totals), values, logp, entropy, mask

    def _policy_loss(self, logp, old, ref, mask, advantages, weights) -> tuple[torch.Tensor, dict[str, float]]:
        """Clipped-surrogate family loss of one micro-batch and its metrics."""
        algo = self.config.algo
        out = self.policy_loss_fn(
            logp,
            old,
            advantages.to(logp.device),
            mask,
            clip_low=algo.clip_low,
            clip_high=algo.clip_high,
            ref_logp=ref,
            beta=algo.beta,
            kl_estimator=algo.kl_estimator,
            kl_clamp=algo.kl_clamp,
            aggregation=algo.aggregation,
            norm_const=self.config.rollout.max_new_tokens,
            token_weights=weights,
        )
        values = {
            "loss": out.loss.item(),
            "kl": out.kl.item(),
            "clip_fraction": out.clip_fraction.item(),
            "clip_low_fraction": out.clip_low_fraction.item(),
            "clip_high_fraction": out.clip_high_fraction.item(),
        }
        if weights is not None:
            values["token_weight_mean"] = float((weights * mask).sum() / mask.sum().clamp(min=1))
            values["token_weight_max"] = float(weights.max())
        return out.loss, values

    def _regression_loss(self, logp, old, ref, mask, part: LossPart, iteration: int) -> tuple[torch.Tensor, dict[str, float]]:
        """Reg-GRPO loss of one micro-batch (whole groups) and its metrics.

        The first update of a rollout batch is on-policy (``old`` is ``logp`` detached, the
        log-ratio is identically 0), so it uses the variance floor ``reg_grpo.onpolicy_eps``;
        later updates regress against the log-probs kept from rollout time, exactly as the paper.
        """
        algo = self.config.algo
        out = self.reg_loss_fn(
            sequence_logp(logp, mask),
            sequence_logp(old, mask),
            part.rewards.to(logp.device),
            part.group_ids.to(logp.device),
            unbiased=algo.reg_grpo.unbiased_std,
            log_ratio_eps=algo.reg_grpo.onpolicy_eps if iteration == 0 else 0.0,
            degenerate="skip",
            beta=algo.beta,
            token_logp=logp,
            ref_token_logp=ref,
            mask=mask,
            kl_estimator=algo.kl_estimator,
            kl_clamp=algo.kl_clamp,
            aggregation=algo.aggregation,
        )
        values = {
            "loss": out.loss.item(),
            "kl": out.kl.item(),
            "reg_grpo/regression_loss": out.regression_loss.item(),
            "reg_grpo/log_ratio_std": out.log_ratio_std.item(),
            "reg_grpo/degenerate_group_fraction": float(out.num_degenerate_groups) * self.sampling.n / len(part.rewards),
        }
        return out.loss, values

    def _collect_groups(self, n_prompts: int, step: int = 0):
        """Sample and score `n_prompts` groups; with dynamic sampling, replace zero-variance groups.

        Forced rethinking and the bonuses (CARE, T-GRPO) act before the zero-variance test. Returns
        the kept samples, their processed prompts, rollouts, rewards and metrics: dropped groups,
        extra sampling rounds and the shaping metrics averaged over rounds.
        """
        algo = self.config.algo
        self.engine.model = self.policy
        kept: list[tuple[list[Sample], list[PromptInputs], Rollouts, RewardResult]] = []
        bonus_stats: list[dict[str, float]] = []
        n_kept, dropped, rounds = 0, 0, 0
        while True:
            samples = self.sampler.take(n_prompts - n_kept)
            prompts = [self.encoder.encode(s) for s in samples]
            with self.timer("generation"):
                rollouts = self.engine.generate(prompts, self.sampling)
            samples, prompts, rollouts, rewards = self._shape(samples, prompts, rollouts, bonus_stats, f"{step}:{rounds}")
            groups = list(range(len(samples)))
            if algo.dynamic_sampling:
                std = group_reward_std(rewards.total, rollouts.group_ids)
                varied = {int(g) for g in rollouts.group_ids[std > 0].tolist()}
                groups = [g for g in groups if g in varied]
                dropped += len(samples) - len(groups)
            if groups:
                rows = torch.cat([torch.nonzero(rollouts.group_ids == g).flatten() for g in groups])
                kept.append(
                    (
                        [samples[g] for g in groups],
                        [prompts[g] for g in groups],
                        rollouts.select_groups(groups),
                        _select_rewards(rewards, rows),
                    )
                )
                n_kept += len(groups)
            if n_kept == n_prompts or not algo.dynamic_sampling or rounds == algo.dynamic_sampling_max_rounds:
                break
            rounds += 1
        if not kept:  # every group agreed in every round: train on the last batch (its advantages are 0)
            kept.append((samples, prompts, rollouts, rewards))
        samples = [s for part in kept for s in part[0]]
        prompts = [p for part in kept for p in part[1]]
        rollouts = Rollouts.concat([part[2] for part in kept])
        rewards = _concat_rewards([part[3] for part in kept])
        stats = {"dropped_groups": float(dropped), "refill_rounds": float(rounds)}
        for key in {k for round_stats in bonus_stats for k in round_stats}:
            values = [round_stats[key] for round_stats in bonus_stats if key in round_stats]
            stats[key] = sum(values) / len(values)
        return samples, prompts, rollouts, rewards, stats

    def _shape(self, samples, prompts, rollouts: Rollouts, stats: list[dict[str, float]], round_key: str):
        """Score the rollouts, then apply difficulty augmentation, forced rethinking and the GRPO-CARE
        and T-GRPO bonuses, before any group statistic; appends their metrics to ``stats``.

        Returns the samples, prompts, rollouts and rewards the step trains on.
        """
        with self.timer("rewards"):
            rewards = score(self.rewards, samples, rollouts)
        round_stats: dict[str, float] = {}
        if self.difficulty is not None:
            samples, prompts, rollouts, rewards, difficulty_stats = self.difficulty.apply(samples, prompts, rollouts, rewards)
            round_stats.update(difficulty_stats)
        if self.rethink is not None:
            rng = random.Random(f"{self.config.seed}:{self.accelerator.process_index}:{round_key}")
            rollouts, rewards, rethink_stats = self.rethink.apply(samples, prompts, rollouts, rewards, rng)
            round_stats.update(rethink_stats)
        if self.care is not None:
            rewards, care_stats = self.care.add_bonus(rewards, rollouts, self._micro_batches(prompts, rollouts))
            round_stats.update(care_stats)
        if self.temporal is not None:
            rewards, temporal_stats = self.temporal.add_bonus(samples, rollouts, rewards)
            round_stats.update(temporal_stats)
        stats.append(round_stats)
        return samples, prompts, rollouts, rewards

    def _token_weights(self, vocab: torch.Tensor | None, mask: torch.Tensor, group_ids: torch.Tensor) -> torch.Tensor | None:
        """TW-GRPO weights [B, C] of one micro-batch (it holds whole groups), or None without token weighting."""
        if self.token_weight_fn is None:
            return None
        algo = self.config.algo
        return self.token_weight_fn(
            vocab, mask, group_ids.to(vocab.device), alpha=algo.tw_alpha, chunk=algo.tw_chunk or None
        )

    def _micro_batches(self, prompts: Sequence[PromptInputs], rollouts: Rollouts, groups: Sequence[int] | None = None):
        """(Batch, row indices) per micro-batch of whole groups (all, or `groups`), so no group is split."""
        n, size = self.sampling.n, self.config.trainer.micro_batch_prompts
        groups = list(range(len(prompts))) if groups is None else list(groups)
        chunks = []
        for start in range(0, len(groups), size):
            chosen = groups[start : start + size]
            rows = torch.cat([torch.nonzero(rollouts.group_ids == g).flatten() for g in chosen])
            completions = [rollouts.completion_ids[r] for r in rows.tolist()]
            batch = self.adapter.collate([prompts[g] for g in chosen], n, completions)
            if self.config.algo.mask_truncated:
                cut = torch.tensor([rollouts.truncated[r] for r in rows.tolist()])
                batch.completion_mask[cut] = 0.0
            chunks.append((batch, rows))
        return chunks

    @torch.no_grad()
    def _frozen_logps(self, model, batch) -> torch.Tensor:
        return completion_logprobs(model, batch, shared_prefix=self.shared_prefix)[0]

    def _chunk_weight(self, mask: torch.Tensor, totals: dict[str, int]) -> float:
        """Share of the step's loss carried by one micro-batch under the configured aggregation."""
        if self.config.algo.aggregation == "token_mean":
            return float(mask.sum()) / totals["tokens"]
        return mask.shape[0] / totals["rows"]

    def _optimizer_step(self) -> float:
        norm = self.clip_and_step()
        self._sync_engine_weights()
        return norm

    def _sync_engine_weights(self) -> None:
        """Give a vLLM engine the policy's weights: every process its own colocated engine, or the main
        process the shared server (under ZeRO-3 the others walk the weights too: the gathers are collective)."""
        sync = getattr(self.engine, "sync_weights", None)
        if sync is None:
            return
        if self.config.rollout.engine == "vllm" or self.is_main:
            sync(self.policy)
        elif self.zero3:
            from vlm_rl.rollout.weight_sync import checkpoint_tensors

            for _ in checkpoint_tensors(self.policy):
                pass
        self.accelerator.wait_for_everyone()

    def _metrics(self, step, samples, rollouts: Rollouts, rewards, stats: dict[str, float]) -> dict[str, float]:
        lengths = torch.tensor(rollouts.lengths, dtype=torch.float32)
        metrics = {
            "reward": float(rewards.total.mean()),
            "reward_std": float(group_reward_std(rewards.total, rollouts.group_ids).mean()),
            "zero_std_groups": float(
                (group_reward_std(rewards.total, rollouts.group_ids) == 0).float().mean()
            ),
            "completion_length": float(lengths.mean()),
            "truncated": sum(rollouts.truncated) / len(rollouts),
            **{f"reward/{k}": float(v.mean()) for k, v in rewards.scores.items()},
            **stats,
        }
        metrics["format_rate"] = sum(format_reward(t) for t in rollouts.texts) / len(rollouts)
        skipped = torch.tensor([is_empty_thought(t) for t in rollouts.texts])
        metrics["skip_ratio"] = float(skipped.float().mean())
        for name, rows in (("no_think", skipped), ("think", ~skipped)):
            if rows.any():
                metrics[f"completion_length/{name}"] = float(lengths[rows].mean())
        if "accuracy" in rewards.scores:
            accuracy = rewards.scores["accuracy"]
            metrics["accuracy"] = float(accuracy.mean())
            correct = accuracy == 1.0
            for name, rows in (("correct", correct), ("incorrect", ~correct)):
                if rows.any():
                    metrics[f"completion_length/{name}"] = float(lengths[rows].mean())
        every = self.config.trainer.sample_every
        if every and step % every == 0:
            group = rollouts.group_ids == 0
            self.logger.log_samples(
                step,
                [
                    {
                        "sample": samples[0].origin,
                        "completion": rollouts.texts[i],
                        "reward": float(rewards.total[i]),
                        **{k: float(v[i]) for k, v in rewards.scores.items()},
                    }
                    for i in torch.nonzero(group).flatten().tolist()
                ],
            )
        return metrics


def _select_rewards(rewards: RewardResult, rows: torch.Tensor) -> RewardResult:
    return RewardResult({k: v[rows] for k, v in rewards.scores.items()}, rewards.total[rows], rewards.names)


def _concat_rewards(parts: Sequence[RewardResult]) -> RewardResult:
    scores = {k: torch.cat([p.scores[k] for p in parts]) for k in parts[0].scores}
    return RewardResult(scores, torch.cat([p.total for p in parts]), parts[0].names)


def _accumulate(stats: dict[str, float], key: str, value: float) -> None:
    stats[key] = stats.get(key, 0.0) + value
