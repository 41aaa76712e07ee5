"""GRPO-CARE in the loop: the EMA reference model, its answer-span likelihoods and the bonus.

The formulas are in `vlm_rl.algorithms.care`; this module owns the model copy and its state.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from data_pipelines.completion_format import answer_content_span
from vlm_rl.algorithms.care import answer_span_confidence, care_bonus, ema_update_, should_update_ema
from vlm_rl.config import CareConfig
from vlm_rl.models.logprobs import completion_logprobs
from vlm_rl.models.spans import tokens_in_char_span
from vlm_rl.rewards import RewardResult
from vlm_rl.rollout import Rollouts
from vlm_rl.rollout.weight_sync import gathered
from vlm_rl.training.groups import Groups
from vlm_rl.training.methods import Method, MethodContext

EMA_FILE = "care_ema.safetensors"


class ConsistencyReference(Method):
    """GRPO-CARE's slowly evolving reference: an EMA copy of the policy that scores sampled answers.

    Initialised from the policy's weights at the start of training; every trainable and frozen
    parameter is averaged, as in the released code.
    """

    def __init__(self, policy: torch.nn.Module, config: CareConfig, tokenizer, *, shared_prefix: bool = False) -> None:
        self.config = config
        self.tokenizer = tokenizer
        self.shared_prefix = shared_prefix
        self.model = _full_copy(policy).eval().requires_grad_(False)

    @classmethod
    def from_config(cls, ctx: MethodContext) -> ConsistencyReference | None:
        """The EMA copy of the policy (build under `Trainer.whole_models` so ZeRO-3 leaves it whole)."""
        config = ctx.config.algo.care
        if not config.enabled:
            return None
        method = cls(ctx.policy, config, ctx.adapter.tokenizer, shared_prefix=ctx.config.model.shared_prefix)
        method.model.to(ctx.device)
        method.micro_batches = ctx.micro_batches
        return method

    def shape(self, groups: Groups, round_key: str) -> tuple[Groups, dict[str, float]]:
        rewards, stats = self.add_bonus(groups.rewards, groups.rollouts, self.micro_batches(groups.prompts, groups.rollouts))
        return dataclasses.replace(groups, rewards=rewards), stats

    def add_bonus(self, rewards: RewardResult, rollouts: Rollouts, chunks) -> tuple[RewardResult, dict[str, float]]:
        """Rewards with the consistency bonus added (sub-score ``care_bonus``) and the CARE metrics.

        ``chunks`` are the (Batch, row indices) micro-batches of these rollouts.
        """
        confidence, has_span = self.confidences(rollouts, chunks)
        cfg = self.config
        bonus = care_bonus(
            rewards.scores["accuracy"],
            confidence,
            rollouts.group_ids,
            margin=cfg.margin,
            bonus_coefficient=cfg.bonus_coefficient,
            confidence_upper_bound=cfg.confidence_upper_bound,
            min_accuracy=cfg.min_accuracy,
        )
        stats = {"care/bonus_rate": float((bonus > 0).float().mean()), "care/answer_span_rate": float(has_span.float().mean())}
        if has_span.any():
            stats["care/confidence"] = float(confidence[has_span].mean())
        return rewards.with_bonus("care_bonus", bonus), stats

    @torch.no_grad()
    def confidences(self, rollouts: Rollouts, chunks) -> tuple[torch.Tensor, torch.Tensor]:
        """Answer-span likelihood ``[N]`` under the reference and whether each completion has a span ``[N]``.

        The span is the contents of the last ``<answer>...</answer>``, located by character offsets;
        completions without one get likelihood 1, as in the released code (they are never accurate,
        so never selected).
        """
        confidence = torch.ones(len(rollouts))
        has_span = torch.zeros(len(rollouts), dtype=torch.bool)
        decode = functools.partial(self.tokenizer.decode, skip_special_tokens=True)  # as the rollout texts
        for batch, rows in chunks:
            logp = completion_logprobs(self.model, batch, shared_prefix=self.shared_prefix)[0].float().cpu()
            for local, row in enumerate(rows.tolist()):
                span = answer_content_span(rollouts.texts[row])
                if span is None:
                    continue
                first, offsets = tokens_in_char_span(decode, rollouts.completion_ids[row], span)
                confidence[row] = answer_span_confidence(logp[local, first : first + len(offsets)], offsets, span)
                has_span[row] = True
        return confidence, has_span

    def after_optimizer_step(self, policy: torch.nn.Module, optimizer_step: int) -> bool:
        """EMA update when ``optimizer_step`` (1-based) is due; returns whether it happened."""
        if not should_update_ema(optimizer_step, self.config.ema_every):
            return False
        params = list(policy.parameters())
        with gathered(params):
            ema_update_(self.model.parameters(), params, decay=self.config.ema_decay)
        return True

    def save(self, directory: Path) -> None:
        save_model(self.model, str(directory / EMA_FILE))

    def load(self, directory: Path) -> None:
        path = directory / EMA_FILE
        if not path.is_file():
            raise FileNotFoundError(
                f"{directory} has no {EMA_FILE}: the checkpoint was written without algo.care.enabled; "
                "resume it without CARE or start a fresh run"
            )
        load_model(self.model, str(path), strict=True)


def _full_copy(policy: torch.nn.Module) -> torch.nn.Module:
    """A full copy of the policy; under DeepSpeed ZeRO-3 (partitioned parameters) a fresh model of its
    class filled with the gathered weights, every process holding the whole EMA reference (build it
    inside `Trainer.whole_models`, or transformers partitions the fresh model too)."""
    params = list(policy.parameters())
    if not any(hasattr(p, "ds_id") for p in params):
        return copy.deepcopy(policy)
    model = type(policy)._from_config(policy.config)
    with gathered(params):
        model.load_state_dict(policy.state_dict())
    return model.to(params[0].device)
