"""One micro-batch's loss: the forward pass, the token weights, and the registered loss."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vlm_rl.algorithms import LossInputs, LossOutput, LossSettings, StepNormaliser, get_loss_fn, get_token_weight_fn
from vlm_rl.config import RunConfig
from vlm_rl.models.adapter import Batch
from vlm_rl.models.logprobs import completion_logprobs
from vlm_rl.training.loss_parts import LossPart


@dataclass(frozen=True)
class PartResult:
    """The loss output and the forward's log-probs [B, C], entropies [B, C] (None after the first
    update), completion mask [B, C] and token weights [B, C] (None without token weighting) of one micro-batch."""

    out: LossOutput
    logp: torch.Tensor
    entropy: torch.Tensor | None
    mask: torch.Tensor
    weights: torch.Tensor | None = None


class PolicyUpdate:
    """The configured loss (``algo.policy_loss``) and token weighting over the loss micro-batches."""

    def __init__(self, config: RunConfig) -> None:
        algo = config.algo
        self.loss_fn = get_loss_fn(algo.policy_loss)
        self.token_weight_fn = get_token_weight_fn(algo.token_weighting) if algo.token_weighting != "none" else None
        self.tw = algo.tw_grpo
        self.shared_prefix = config.model.shared_prefix
        self.settings = LossSettings(
            clip_low=algo.clip_low,
            clip_high=algo.clip_high,
            clip_ratio_c=algo.clip_ratio_c,
            beta=algo.beta,
            kl_estimator=algo.kl_estimator,
            kl_clamp=algo.kl_clamp,
            aggregation=algo.aggregation,
            norm_const=config.rollout.max_new_tokens,
            options={"unbiased_std": algo.reg_grpo.unbiased_std, "onpolicy_eps": algo.reg_grpo.onpolicy_eps},
        )

    @torch.no_grad()
    def frozen_logps(self, model, batch: Batch) -> torch.Tensor:
        """Log-probs [B, C] of a frozen model (old policy snapshot, reference) or of the policy without a gradient."""
        return completion_logprobs(model, batch, shared_prefix=self.shared_prefix)[0]

    def __call__(
        self, model, part: LossPart, first: bool, old: torch.Tensor | None, ref: torch.Tensor | None, step: StepNormaliser
    ) -> PartResult:
        """Loss of one micro-batch; ``old`` None means on-policy (the ratio is taken against ``logp`` detached)."""
        logp, entropy, vocab = completion_logprobs(
            model, part.batch, with_entropy=first, with_vocab=self.token_weight_fn is not None, shared_prefix=self.shared_prefix
        )
        mask = part.batch.completion_mask.to(logp.device)
        weights = None
        if self.token_weight_fn is not None:
            ids = part.group_ids.to(vocab.device)
            weights = self.token_weight_fn(vocab, mask, ids, alpha=self.tw.alpha, chunk=self.tw.chunk or None)
        inputs = LossInputs(
            logp=logp,
            old_logp=logp.detach() if old is None else old.to(logp.device),
            mask=mask,
            advantages=part.advantages,
            rewards=part.rewards,
            group_ids=part.group_ids,
            ref_logp=ref,
            token_weights=weights,
            first_update=first,
        )
        return PartResult(self.loss_fn(inputs, self.settings, step), logp, entropy, mask, weights)
